// MuJoCo's C API from Debian's libmujoco-dev (which ships no pkg-config file; its headers
// live in /usr/include/mujoco, on the default search path).
#ifndef DECISIONFLOW_CMUJOCO_SHIM_H
#define DECISIONFLOW_CMUJOCO_SHIM_H

#include <mujoco/mujoco.h>

#endif
