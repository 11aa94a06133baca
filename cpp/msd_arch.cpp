#include "msd_kernel.hpp"
