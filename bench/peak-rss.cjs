// Preloaded (node --require) into a process whose peak memory the benchmark measures: at exit, it writes the
// process's peak resident set size in bytes to the file named by PEAK_RSS_FILE. On Linux that is VmHWM, the peak of
// this process's own memory: getrusage's maxRSS also counts the peak of the process it was forked from (the
// benchmark, large by then), which would hide the child's.
"use strict"
const fs = require("node:fs")

const peak = () => {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync("/proc/self/status", "utf8"))
    if (match !== null) return Number(match[1]) * 1024
  } catch {
    // Not Linux.
  }
  return process.resourceUsage().maxRSS * 1024
}

process.on("exit", () => {
  fs.writeFileSync(process.env.PEAK_RSS_FILE, String(peak()))
})
