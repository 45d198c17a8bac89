// What every bench tool shares with scripts/bench.sh (issue 15): result rows, and a process's CPU
// time read from /proc as the per-unit cost of the work it did.
//
// A result row is one stdout line, `ROW|goal|measured|baseline|ratio|target|verdict`, verdict one
// of PASS, FAIL or INFO (a figure without a target: growth, per-unit costs). scripts/bench.sh
// collects the rows of every tool into its final table; everything else a tool prints goes to the
// run's log.
#ifndef FLIKPAY_BENCH_ROWS_H_
#define FLIKPAY_BENCH_ROWS_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace flikpay::bench {

// One row; '|' inside a cell would split it, so it becomes '/'.
inline void PrintRow(const std::string& goal, const std::string& measured,
                     const std::string& baseline, const std::string& ratio,
                     const std::string& target, const std::string& verdict) {
  auto cell = [](const std::string& text) { return absl::StrReplaceAll(text, {{"|", "/"}}); };
  std::printf("ROW|%s|%s|%s|%s|%s|%s\n", cell(goal).c_str(), cell(measured).c_str(),
              cell(baseline).c_str(), cell(ratio).c_str(), cell(target).c_str(),
              cell(verdict).c_str());
  std::fflush(stdout);
}

inline std::string Verdict(bool met) { return met ? "PASS" : "FAIL"; }

// a / b with two decimals, "—" when b is not positive.
inline std::string Ratio(double a, double b) {
  return b > 0 ? absl::StrFormat("%.2f", a / b) : std::string("—");
}

// User + system CPU seconds a process has used so far (all its threads), from /proc/PID/stat;
// -1 when it cannot be read (no such process, pid 0).
inline double CpuSeconds(int pid) {
  if (pid <= 0) return -1;
  std::ifstream file(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces: count fields from the last ')'.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream rest(stat.substr(paren + 1));
  std::string field;
  int64_t utime = -1, stime = -1;
  // After ')': state is field 3; utime and stime are fields 14 and 15.
  for (int index = 3; index <= 15 && rest >> field; ++index) {
    if (index == 14 && !absl::SimpleAtoi(field, &utime)) return -1;
    if (index == 15 && !absl::SimpleAtoi(field, &stime)) return -1;
  }
  if (utime < 0 || stime < 0) return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace flikpay::bench

#endif  // FLIKPAY_BENCH_ROWS_H_
