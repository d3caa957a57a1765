// Swift cannot import HDF5's object-like macros that expand to expressions (most of them
// read a global after calling H5open()). Each one becomes a `swift_`-prefixed static inline
// function here, so the Swift layer calls the real macro and never copies its value.
#ifndef DECISIONFLOW_CHDF5_SHIM_H
#define DECISIONFLOW_CHDF5_SHIM_H

#include <hdf5.h>

// Default property lists and "whole dataspace" selector: plain integer macros cast to hid_t.
static inline hid_t swift_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t swift_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t swift_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline hsize_t swift_H5S_UNLIMITED(void) { return H5S_UNLIMITED; }
static inline size_t swift_H5T_VARIABLE(void) { return H5T_VARIABLE; }

// File access flags: these call H5check/H5open before yielding the constant.
static inline unsigned swift_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned swift_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned swift_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned swift_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }

// Property list classes: globals initialised by H5open().
static inline hid_t swift_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t swift_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t swift_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t swift_H5P_DATASET_XFER(void) { return H5P_DATASET_XFER; }

// Native memory types: globals initialised by H5open().
static inline hid_t swift_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t swift_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t swift_H5T_NATIVE_INT8(void) { return H5T_NATIVE_INT8; }
static inline hid_t swift_H5T_NATIVE_INT16(void) { return H5T_NATIVE_INT16; }
static inline hid_t swift_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t swift_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t swift_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t swift_H5T_NATIVE_UINT16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t swift_H5T_NATIVE_UINT32(void) { return H5T_NATIVE_UINT32; }
static inline hid_t swift_H5T_NATIVE_UINT64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t swift_H5T_C_S1(void) { return H5T_C_S1; }

// File (little-endian, fixed-size) types, used when writing so files are the same on any host.
static inline hid_t swift_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t swift_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t swift_H5T_STD_I8LE(void) { return H5T_STD_I8LE; }
static inline hid_t swift_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }

#endif
