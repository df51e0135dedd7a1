// KServe V2 inference over HTTP: each iteration posts the next request of the set to URL and checks the
// answer (200, and the argmax of every image's probabilities equal to its label).
//   URL   the infer endpoint, e.g. http://127.0.0.1:8000/v2/models/lenet5/infer
//   BODY  json (default): V2 JSON, "data" as a flat list;
//         binary: the binary-tensor extension (JSON header + raw FP32), answers asked for as JSON
// and the load shape and request set of common.js. bench/protocol.py runs it; by hand, for example:
//   k6 run -e URL=... -e REQUESTS=bench/results/k6/requests/single.json -e LOOP=closed -e VUS=64 bench/k6/v2_http.js
import http from 'k6/http';
import encoding from 'k6/encoding';
import { env, loadOptions, nextIndex, recordAnswer, requestSet } from './common.js';

export { handleSummary } from './common.js';
export const options = loadOptions();

const url = env('URL');
const binary = env('BODY', 'json') === 'binary';
if (!binary && env('BODY', 'json') !== 'json') throw new Error('BODY is json or binary');

function binaryRequest(request) {
  const raw = new Uint8Array(encoding.b64decode(request.raw_b64, 'std'));
  const header = JSON.stringify({
    inputs: [{
      name: 'image', shape: [request.labels.length, 28, 28, 1], datatype: 'FP32',
      parameters: { binary_data_size: raw.length },
    }],
    outputs: [{ name: 'probabilities', parameters: { binary_data: false } }],
  });
  const body = new Uint8Array(header.length + raw.length);
  for (let i = 0; i < header.length; i++) body[i] = header.charCodeAt(i); // ASCII
  body.set(raw, header.length);
  return {
    body: body.buffer,
    params: {
      headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(header.length) },
      timeout: '30s',
    },
  };
}

const requests = requestSet.requests.map((request) => (binary ? binaryRequest(request) : {
  body: request.json, params: { headers: { 'Content-Type': 'application/json' }, timeout: '30s' },
}));

export default function () {
  const index = nextIndex();
  const answer = http.post(url, requests[index].body, requests[index].params);
  let probabilities = null;
  if (answer.status === 200) {
    try {
      probabilities = answer.json('outputs.0.data'); // a gjson path: no whole-answer JSON.parse
    } catch (error) { /* not the V2 answer: counted as a failure below */ }
  }
  recordAnswer(answer.status === 200, probabilities, requestSet.requests[index].labels,
    `HTTP ${answer.status} ${answer.error || ''} ${answer.body ? String(answer.body).slice(0, 200) : ''}`,
    answer.status === 503);
}
