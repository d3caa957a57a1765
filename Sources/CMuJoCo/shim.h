// MuJoCo's C API, the official 4.0.1 build that scripts/install-mujoco.sh takes from PyPI's
// mujoco-core wheel and describes with a pkg-config file (mujoco.pc). Debian's libmujoco-dev
// (2.2.2) may also be installed, with headers on the default search path; the check below
// stops a build that found those instead of 4.0.1's.
#ifndef DECISIONFLOW_CMUJOCO_SHIM_H
#define DECISIONFLOW_CMUJOCO_SHIM_H

#include <mujoco/mujoco.h>

#if !defined(mjVERSION_HEADER) || mjVERSION_HEADER != 4000001
#error "DecisionFlow needs MuJoCo 4.0.1's headers; run scripts/install-mujoco.sh (pkg-config mujoco must name 4.0.1)"
#endif

#endif
