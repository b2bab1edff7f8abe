# Not what npm install or npm run prebuild use (both run cmake-js through scripts/build-native.js); kept for
# node-gyp users. Everything it compiles with comes from scripts/build-flags.js, as for CMakeLists.txt
# (test/build-files.test.ts checks that the two describe the same build).
{
  "targets": [
    {
      "target_name": "simclr",
      "sources": ["<!@(node scripts/build-flags.js sources)"],
      "include_dirs": ["<!@(node scripts/build-flags.js includes)"],
      "defines": [
        "<!@(node scripts/build-flags.js defines)",
        "SIMCLR_SOURCE_HASH=\"<!(node scripts/source-hash.js)\""
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++1y", "-std=gnu++17"],
      "cflags_cc": ["<!@(node scripts/build-flags.js std)", "-fexceptions", "<!@(node scripts/build-flags.js cflags)"],
      "ldflags": ["<!@(node scripts/build-flags.js ldflags)"]
    }
  ]
}
