/**
 * ONNX's schema (proto/onnx.proto) through protobufjs: what the export encodes with and the metadata is read with. A
 * module of its own, so that the public types of simclr/preprocess do not name protobufjs' (which need Node's).
 */
import * as path from 'path';
import * as protobuf from 'protobufjs';

let schema: protobuf.Root | undefined;
/** ONNX's schema, loaded once: proto/ sits two folders above this file in src/ and dist/ alike. */
export function onnxSchema(): protobuf.Root {
  return (schema ??= protobuf.loadSync(path.join(__dirname, '..', '..', 'proto', 'onnx.proto')));
}
