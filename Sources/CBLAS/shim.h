// OpenBLAS's CBLAS interface, plus its thread-count controls (declared in the same header).
#ifndef DECISIONFLOW_CBLAS_SHIM_H
#define DECISIONFLOW_CBLAS_SHIM_H

#include <cblas.h>

#endif
