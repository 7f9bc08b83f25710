// The diffimaging C++ core: every public header.  Link the CMake target
// diffimaging::core (find_package(diffimaging CONFIG)).
#pragma once

#include "diffimaging/binning.hpp"
#include "diffimaging/core/buffer.hpp"
#include "diffimaging/core/common.hpp"
#include "diffimaging/core/dispatch.hpp"
#include "diffimaging/core/thread_pool.hpp"
#include "diffimaging/core/view.hpp"
#include "diffimaging/holography.hpp"
#include "diffimaging/math/binning.hpp"
#include "diffimaging/math/frequency.hpp"
#include "diffimaging/math/sincos.hpp"
#include "diffimaging/math/transfer.hpp"
#include "diffimaging/pointwise.hpp"
#include "diffimaging/propagate.hpp"
#include "diffimaging/version.hpp"
