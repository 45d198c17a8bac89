#ifndef FLIKPAY_CORE_STATE_MACHINE_H_
#define FLIKPAY_CORE_STATE_MACHINE_H_

#include "flikpay/v1/payment_service.pb.h"

namespace flikpay::core {

// What to do with a reported status, given the stored one. Transitions only go forward:
//   UNKNOWN -> PENDING | SUCCESS | CANCELLED | ERROR
//   PENDING -> SUCCESS | CANCELLED | ERROR
// and final states (SUCCESS, CANCELLED, ERROR) never change.
enum class Verdict {
  kApply,      // a real change: store it and emit one event
  kDuplicate,  // the same status again: nothing happens, no event
  kLate,       // an older, non-final status arriving after a newer one (e.g. PENDING
               // after SUCCESS): ignored
  kAnomaly,    // a different final status after a final one: recorded in the
               // history, logged, counted; the status stays
};

Verdict Judge(v1::TransactionStatus stored, v1::TransactionStatus reported);

bool IsFinal(v1::TransactionStatus status);

}  // namespace flikpay::core

#endif  // FLIKPAY_CORE_STATE_MACHINE_H_
