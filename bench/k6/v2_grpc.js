// KServe V2 inference over gRPC (inference.GRPCInferenceService/ModelInfer, images in raw_input_contents):
// each iteration sends the next request of the set and checks the answer (status OK, and the argmax of every
// image's probabilities equal to its label; raw_output_contents or typed fp32_contents).
//   ADDR         host:port of the gRPC server, e.g. 127.0.0.1:8001
//   MODEL        model name, e.g. lenet5
//   DESCRIPTORS  reflect (default): ask the server (gRPC server reflection);
//                or a protoset file (a FileDescriptorSet), for servers without reflection such as Triton;
//                bench/protocol.py writes one from tritonclient's compiled grpc_service descriptors
// and the load shape and request set of common.js. Each VU opens one connection (one HTTP/2 channel).
import grpc from 'k6/net/grpc';
import encoding from 'k6/encoding';
import { env, loadOptions, nextIndex, recordAnswer, requestSet } from './common.js';

export { handleSummary } from './common.js';
export const options = loadOptions();

const METHOD = 'inference.GRPCInferenceService/ModelInfer';
const addr = env('ADDR');
const model = env('MODEL');
const descriptors = env('DESCRIPTORS', 'reflect');
const client = new grpc.Client();
if (descriptors !== 'reflect') client.loadProtoset(descriptors);

const messages = requestSet.requests.map((request) => ({
  model_name: model,
  inputs: [{ name: 'image', datatype: 'FP32', shape: [request.labels.length, 28, 28, 1] }],
  outputs: [{ name: 'probabilities' }],
  raw_input_contents: [request.raw_b64],
}));
let connected = false;

function probabilitiesOf(message) {
  if (message.rawOutputContents && message.rawOutputContents.length) {
    return new Float32Array(encoding.b64decode(message.rawOutputContents[0], 'std'));
  }
  const contents = message.outputs && message.outputs[0] && message.outputs[0].contents;
  return contents ? contents.fp32Contents : null;
}

export default function () {
  const index = nextIndex();
  const labels = requestSet.requests[index].labels;
  try {
    if (!connected) {
      client.connect(addr, {
        plaintext: true, reflect: descriptors === 'reflect', timeout: '10s',
        maxReceiveSize: 64 << 20, maxSendSize: 64 << 20,
      });
      connected = true;
    }
    const answer = client.invoke(METHOD, messages[index], { timeout: '30s' });
    const ok = answer.status === grpc.StatusOK;
    recordAnswer(ok, ok ? probabilitiesOf(answer.message) : null, labels,
      `gRPC status ${answer.status} ${answer.error ? JSON.stringify(answer.error) : ''}`,
      answer.status === grpc.StatusUnavailable);
  } catch (error) { // no connection, no reflection, unknown method: a failed answer, not an aborted run
    recordAnswer(false, null, labels, error);
  }
}
