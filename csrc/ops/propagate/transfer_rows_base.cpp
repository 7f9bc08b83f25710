#define DI_ROWS_NS rows_base
#include "transfer_rows_impl.hpp"
