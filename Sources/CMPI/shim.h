// Open MPI's C API for Swift. MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM and the like are macros that
// take the address of global objects (`&ompi_mpi_comm_world`), which Swift cannot import, so
// each gets a `swift_`-prefixed inline function that returns it.
#ifndef DECISIONFLOW_CMPI_SHIM_H
#define DECISIONFLOW_CMPI_SHIM_H

#include <mpi.h>

static inline MPI_Comm swift_MPI_COMM_WORLD(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype swift_MPI_FLOAT(void) { return MPI_FLOAT; }
static inline MPI_Datatype swift_MPI_DOUBLE(void) { return MPI_DOUBLE; }
static inline MPI_Datatype swift_MPI_UINT64_T(void) { return MPI_UINT64_T; }
static inline MPI_Datatype swift_MPI_BYTE(void) { return MPI_BYTE; }
static inline MPI_Op swift_MPI_SUM(void) { return MPI_SUM; }
static inline MPI_Op swift_MPI_MAX(void) { return MPI_MAX; }
static inline MPI_Errhandler swift_MPI_ERRORS_RETURN(void) { return MPI_ERRORS_RETURN; }
static inline void *swift_MPI_IN_PLACE(void) { return MPI_IN_PLACE; }
static inline int swift_MPI_SUCCESS(void) { return MPI_SUCCESS; }
static inline int swift_MPI_MAX_ERROR_STRING(void) { return MPI_MAX_ERROR_STRING; }

#endif
