/* Stand-in for the mbed OS header that Arm's generated nn.h includes: its nn.cpp only
   declares a Timer it never uses, so an empty class is all the QEMU benchmark needs. */
#ifndef ARM_HARNESS_MBED_H
#define ARM_HARNESS_MBED_H
class Timer {};
#endif
