#include "core/cursor.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace flikpay::core {

std::optional<Cursor> ParseCursor(absl::string_view text) {
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(text, absl::MaxSplits('-', 1));
  Cursor cursor;
  if (text.find('-') == absl::string_view::npos ||
      !absl::SimpleAtoi(parts.first, &cursor.milliseconds) ||
      !absl::SimpleAtoi(parts.second, &cursor.sequence)) {
    return std::nullopt;
  }
  return cursor;
}

bool CursorBefore(absl::string_view a, absl::string_view b) {
  return ParseCursor(a).value_or(Cursor{}) < ParseCursor(b).value_or(Cursor{});
}

}  // namespace flikpay::core
