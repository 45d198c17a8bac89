#include "core/state_machine.h"

namespace flikpay::core {

bool IsFinal(v1::TransactionStatus status) {
  return status == v1::TRANSACTION_STATUS_SUCCESS || status == v1::TRANSACTION_STATUS_CANCELLED ||
         status == v1::TRANSACTION_STATUS_ERROR;
}

namespace {

// UNKNOWN < PENDING < final.
int Rank(v1::TransactionStatus status) {
  if (IsFinal(status)) return 2;
  if (status == v1::TRANSACTION_STATUS_PENDING) return 1;
  return 0;
}

}  // namespace

Verdict Judge(v1::TransactionStatus stored, v1::TransactionStatus reported) {
  if (stored == reported) return Verdict::kDuplicate;
  if (IsFinal(stored)) {
    return IsFinal(reported) ? Verdict::kAnomaly : Verdict::kLate;
  }
  return Rank(reported) > Rank(stored) ? Verdict::kApply : Verdict::kLate;
}

}  // namespace flikpay::core
