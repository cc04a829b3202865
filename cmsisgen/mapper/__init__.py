"""Net + formats -> Program of CMSIS-NN calls: hardware rules, weight layouts, buffer plan."""
