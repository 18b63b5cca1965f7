// The `lz4` package's LZ4 block codec (its bundled sources, compiled here as C++), for
// batch-merge.cc: the same compressor the workers' batches come from (codecs/lz4-frame.ts).
#include "lz4.c"
