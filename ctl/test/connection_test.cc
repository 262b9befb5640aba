#include "cairn/ctl/connection.h"
#include <gtest/gtest.h>
