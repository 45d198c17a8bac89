// Event-stream cursors: Redis stream ids, "milliseconds-sequence", which order numerically (not as
// text: "9-0" is before "10-0").
#ifndef FLIKPAY_CORE_CURSOR_H_
#define FLIKPAY_CORE_CURSOR_H_

#include <compare>
#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"

namespace flikpay::core {

struct Cursor {
  uint64_t milliseconds = 0;
  uint64_t sequence = 0;
  auto operator<=>(const Cursor&) const = default;
};

// nullopt unless `text` is two unsigned numbers joined by '-'.
std::optional<Cursor> ParseCursor(absl::string_view text);

// Whether cursor `a` comes before `b`; an unreadable cursor counts as the start of the stream.
bool CursorBefore(absl::string_view a, absl::string_view b);

}  // namespace flikpay::core

#endif  // FLIKPAY_CORE_CURSOR_H_
