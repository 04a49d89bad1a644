// Preloaded (node --require) into a process whose peak memory the benchmark measures: at exit, it writes the
// process's peak resident set size in bytes to the file named by PEAK_RSS_FILE.
"use strict"
const fs = require("node:fs")

process.on("exit", () => {
  fs.writeFileSync(process.env.PEAK_RSS_FILE, String(process.resourceUsage().maxRSS * 1024))
})
