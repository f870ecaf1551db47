'use strict';
// Preloaded into a host process by bench/tenant-memory.ts (NODE_OPTIONS=--require … --expose-gc):
// on SIGWINCH it runs a full GC and writes the process's memory figures to MEMORY_PROBE_FILE.
const { writeFileSync } = require('node:fs');
const v8 = require('node:v8');

process.on('SIGWINCH', () => {
  if (typeof global.gc === 'function') global.gc();
  const report = process.report.getReport();
  const handles = {};
  for (const h of report.libuv) handles[h.type] = (handles[h.type] ?? 0) + 1;
  writeFileSync(
    process.env.MEMORY_PROBE_FILE,
    JSON.stringify({
      memoryUsage: process.memoryUsage(),
      heapSpaces: v8.getHeapSpaceStatistics().map((s) => ({
        name: s.space_name,
        size: s.space_size,
        used: s.space_used_size,
      })),
      handles,
    }),
  );
});
