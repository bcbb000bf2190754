// ROOML_API marks the core's public entry points: they stay visible from the shared
// libraries (libRooML, the Python module) even though the core is built with hidden symbols.
#pragma once

#define ROOML_API __attribute__((visibility("default")))
