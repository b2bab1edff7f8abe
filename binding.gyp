{
  "targets": [
    {
      "target_name": "simclr",
      "sources": ["<!@(node -p \"require('fs').readdirSync('native').filter(f => f.endsWith('.cc')).map(f => 'native/' + f).join(' ')\")"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "<!@(node scripts/libtorch.js includes)"],
      "defines": [
        "<!@(node scripts/libtorch.js defines)",
        "NAPI_VERSION=8",
        "NODE_ADDON_API_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "SIMCLR_SOURCE_HASH=\"<!(node scripts/source-hash.js)\""
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++1y", "-std=gnu++17"],
      "cflags_cc": ["<!@(node scripts/libtorch.js std)", "-fexceptions", "-O2", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "ldflags": ["<!@(node scripts/libtorch.js ldflags)"]
    }
  ]
}
