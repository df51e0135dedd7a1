// What v2_http.js and v2_grpc.js share: the load shape, the request set and the answer check.
// bench/protocol.py runs them and sets the environment (k6 -e NAME=VALUE):
//   REQUESTS  request-set file written by protocol.py:
//             {"images_per_request": n, "requests": [{"labels": [d, ...], "json": "<V2 JSON body>", "raw_b64": "..."}]}
//             (raw_b64: the images as little-endian FP32, base64, for binary HTTP bodies and gRPC raw contents)
//   LOOP      closed: VUS virtual users, each sending again as soon as it has its answer (k6 constant-vus)
//             open:   RATE requests/s whatever the answers do (constant-arrival-rate), at most VUS in flight
//                     (all started before the load); an arrival with no free VU is not sent and is counted
//                     in dropped_iterations
//             once:   one request (a probe)
//   DURATION  e.g. 15s
//   SUMMARY   file handleSummary writes k6's end-of-test summary to, as JSON
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';

export function env(name, fallback) {
  const value = __ENV[name];
  if (value === undefined || value === '') {
    if (fallback === undefined) throw new Error(`set ${name} (k6 run -e ${name}=...)`);
    return fallback;
  }
  return value;
}

export function loadOptions() {
  const vus = Number(env('VUS', '64'));
  const duration = env('DURATION', '15s');
  const shapes = {
    closed: () => ({ executor: 'constant-vus', vus, duration }),
    open: () => ({
      executor: 'constant-arrival-rate', rate: Number(env('RATE')), timeUnit: '1s', duration,
      preAllocatedVUs: vus, maxVUs: vus, // all started before the load: one started during it costs its time
    }),
    once: () => ({ executor: 'shared-iterations', vus: 1, iterations: 1 }),
  };
  const shape = shapes[env('LOOP', 'closed')];
  if (!shape) throw new Error(`LOOP is closed, open or once, not ${__ENV.LOOP}`);
  return {
    scenarios: { load: Object.assign({ gracefulStop: '30s' }, shape()) },
    summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max', 'count'],
  };
}

export const requestSet = JSON.parse(open(env('REQUESTS')));

// The requests in turn across all VUs, so every digit of the set is sent as often as the others.
export function nextIndex() {
  return exec.scenario.iterationInTest % requestSet.requests.length;
}

// One check per answer, "answer right" (status OK and every argmax equal to its label): its passes are the right
// answers. k6 spends about 0.3 ms of CPU per request (metrics included), so each extra sample counts.
const answersShed = new Counter('answers_shed'); // failed answers turned away as overloaded (503, UNAVAILABLE)
let failuresLogged = 0;

// probabilities: 10 per image, row after row (array or Float32Array); null when the answer had none.
function rightDigits(probabilities, labels) {
  if (!probabilities || probabilities.length !== labels.length * 10) return false;
  for (let row = 0; row < labels.length; row++) {
    let best = 0;
    for (let k = 1; k < 10; k++) {
      if (probabilities[row * 10 + k] > probabilities[row * 10 + best]) best = k;
    }
    if (best !== labels[row]) return false;
  }
  return true;
}

// statusOk: HTTP 200 or gRPC OK; shed: HTTP 503 or gRPC UNAVAILABLE; detail: what to log when it fails
// (the first few per VU).
export function recordAnswer(statusOk, probabilities, labels, detail, shed) {
  const right = statusOk && rightDigits(probabilities, labels);
  check(right, { 'answer right': (ok) => ok });
  if (!right) {
    if (shed) answersShed.add(1);
    if (failuresLogged++ < 3) console.warn(`VU ${__VU}: failed answer: ${String(detail).slice(0, 300)}`);
  }
}

export function handleSummary(data) {
  const m = data.metrics;
  const latency = (m.http_req_duration || m.grpc_req_duration || { values: {} }).values;
  const checks = m.checks ? m.checks.values : { passes: 0, fails: 0 };
  const count = (name) => (m[name] ? m[name].values.count : 0);
  const rate = checks.passes / (data.state.testRunDurationMs / 1000);
  const line = `answers right ${checks.passes} (${rate.toFixed(1)}/s), failed ${checks.fails} ` +
    `(shed ${count('answers_shed')}), not sent ${count('dropped_iterations')}, ` +
    `p50 ${latency.med} ms, p99 ${latency['p(99)']} ms\n`;
  const out = { stdout: line };
  if (__ENV.SUMMARY) out[__ENV.SUMMARY] = JSON.stringify(data);
  return out;
}
