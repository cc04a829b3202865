"""cmsisgen: compile a trained Caffe model into CMSIS-NN q7 C code for Cortex-M."""

__version__ = "0.2.0"
