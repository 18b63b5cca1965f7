{
  "targets": [
    {
      "target_name": "adgate_native",
      "sources": [
        "src/addon.cc",
        "src/simdjson.cc",
        "src/batch-merge.cc",
        "src/lz4.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!(node -p \"require('path').dirname(require.resolve('@nozbe/simdjson/package.json'))\")/src",
        "<!(node -p \"require('path').dirname(require.resolve('lz4/package.json'))\")/deps/lz4/lib"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "SIMDJSON_EXCEPTIONS=0"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-fno-exceptions", "-g", "<!@(node scripts/march.js)"],
      "cflags!": ["-O2"]
    }
  ]
}
