// bankart-sim: a local stand-in for Bankart's Flik sandbox. See README.md, "bankart-sim".
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/address.h"
#include "gateway/sim/bankart_sim.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8480",
          "host:port to serve the API, the redirect page and the control API on; port 0 picks a "
          "free port (the chosen one is printed on stdout)");
ABSL_FLAG(std::string, public_url, "",
          "base URL put into redirectUrl answers (default: http://<listen>)");
ABSL_FLAG(std::string, api_user, "flikpay-sim", "the API username requests must carry");
ABSL_FLAG(std::string, api_password, "flikpay-sim-password",
          "the API password; accepted as is or as SHA-1 applied 10 times");
ABSL_FLAG(std::vector<std::string>, connector,
          std::vector<std::string>({"ecommerce=sim-ecommerce-key:sim-ecommerce-secret",
                                    "in_person=sim-in-person-key:sim-in-person-secret",
                                    "out_of_band=sim-out-of-band-key:sim-out-of-band-secret",
                                    "payout=sim-payout-key:sim-payout-secret"}),
          "comma-separated connectors as KIND=API_KEY:SHARED_SECRET, KIND one of ecommerce, "
          "in_person, out_of_band, payout");
ABSL_FLAG(double, time_scale, 1.0,
          "multiplies every delay (scenario answers, RTP validity, callback retries, rate-limit "
          "window); 0.01 makes 5 minutes 3 seconds");
ABSL_FLAG(absl::Duration, scenario_delay, absl::Seconds(5),
          "how long after a request the simulated payer answers (before scaling)");
ABSL_FLAG(absl::Duration, request_date_tolerance, absl::Minutes(5),
          "how far a request's Date may be from now before it is refused (1004)");
ABSL_FLAG(absl::Duration, callback_timeout, absl::Seconds(10),
          "how long a callback receiver may take to answer the first attempt");
ABSL_FLAG(std::string, callback_date_format, "gmt",
          "how callbacks write their Date header: gmt (\"Sun, 29 Nov 2026 04:05:06 GMT\"), utc "
          "(\"... UTC\", as seed 001's PHP example prints it) or numeric (\"... +0000\")");
ABSL_FLAG(
    absl::Duration, ecommerce_requery_window, absl::Seconds(45),
    "after an E-commerce request to pay expires unanswered, how long the gateway still asks "
    "the payer's bank before it reports error 2005 (seed 000: at least 45 s; before scaling)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "A local stand-in for Bankart's Flik sandbox (JSON API v3).\nUsage: bankart-sim "
      "[--listen=127.0.0.1:8480] [--time_scale=0.01] ...");
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view path) {
    return absl::StrContains(path, "bankart_sim_main");
  };
  absl::SetFlagsUsageConfig(usage_config);
  absl::ParseCommandLine(argc, argv);

  flikpay::sim::SimOptions options;
  const std::string listen = absl::GetFlag(FLAGS_listen);
  absl::StatusOr<flikpay::core::HostPort> listen_at = flikpay::core::ParseHostPort(listen);
  if (!listen_at.ok()) {
    std::fprintf(stderr, "bankart-sim: --listen: %s\n",
                 std::string(listen_at.status().message()).c_str());
    return 2;
  }
  options.host = listen_at->host;
  options.port = listen_at->port;
  options.public_url = absl::GetFlag(FLAGS_public_url);
  options.api_user = absl::GetFlag(FLAGS_api_user);
  options.api_password = absl::GetFlag(FLAGS_api_password);
  options.time_scale = absl::GetFlag(FLAGS_time_scale);
  options.scenario_delay = absl::GetFlag(FLAGS_scenario_delay);
  options.request_date_tolerance = absl::GetFlag(FLAGS_request_date_tolerance);
  options.callback_timeout = absl::GetFlag(FLAGS_callback_timeout);
  options.ecommerce_requery_window = absl::GetFlag(FLAGS_ecommerce_requery_window);
  std::optional<flikpay::sim::DateForm> date_form =
      flikpay::sim::ParseDateFormName(absl::GetFlag(FLAGS_callback_date_format));
  if (!date_form.has_value()) {
    std::fprintf(stderr, "bankart-sim: --callback_date_format must be gmt, utc or numeric\n");
    return 2;
  }
  options.callback_date_format = *date_form;
  if (options.ecommerce_requery_window < absl::ZeroDuration()) {
    std::fprintf(stderr, "bankart-sim: --ecommerce_requery_window must not be negative\n");
    return 2;
  }
  if (options.time_scale <= 0) {
    std::fprintf(stderr, "bankart-sim: --time_scale must be positive\n");
    return 2;
  }
  for (const std::string& spec : absl::GetFlag(FLAGS_connector)) {
    std::vector<std::string> kind_rest = absl::StrSplit(spec, absl::MaxSplits('=', 1));
    std::vector<std::string> key_secret =
        kind_rest.size() == 2
            ? std::vector<std::string>(absl::StrSplit(kind_rest[1], absl::MaxSplits(':', 1)))
            : std::vector<std::string>();
    std::optional<flikpay::sim::ConnectorKind> kind =
        flikpay::sim::ParseConnectorKind(kind_rest[0]);
    if (!kind || key_secret.size() != 2 || key_secret[0].empty() || key_secret[1].empty()) {
      std::fprintf(stderr, "bankart-sim: --connector entries are KIND=API_KEY:SHARED_SECRET\n");
      return 2;
    }
    options.connectors.push_back({*kind, key_secret[0], key_secret[1]});
  }

  // Signals are taken by sigwait below, not by whichever thread happens to run.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  flikpay::sim::BankartSim sim(options);
  if (absl::Status status = sim.Start(); !status.ok()) {
    std::fprintf(stderr, "bankart-sim: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  std::printf("bankart-sim listening on http://%s:%d\n", options.host.c_str(), sim.port());
  std::fflush(stdout);
  int received = 0;
  sigwait(&signals, &received);
  sim.Stop();
  return 0;
}
