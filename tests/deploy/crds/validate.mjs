// Reads Kubernetes objects (a JSON array) on stdin and prints, as a JSON array, one error
// line for each object that the Prometheus Operator's CRD schema refuses (apiVersion
// monitoring.coreos.com/v1 only; any other kind is an error: this validates CRDs alone).
import * as v1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const errors = [];
for (const object of JSON.parse(input)) {
  const where = `${object.kind}/${object.metadata?.name}`;
  const Model = object.apiVersion === "monitoring.coreos.com/v1" ? v1[object.kind] : undefined;
  if (!Model) {
    errors.push(`${where}: not a monitoring.coreos.com/v1 kind`);
    continue;
  }
  try {
    new Model(object).validate();
  } catch (error) {
    errors.push(`${where}: ${error.message}`);
  }
}
console.log(JSON.stringify(errors));
