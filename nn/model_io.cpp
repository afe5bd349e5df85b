#include "nn/model_io.h"

namespace kd {

TensorFile model_to_file(const Model& m) {
  TensorFile f;
  f.tensors = m.state();
  f.metadata["format"] = kModelFormat;
  f.metadata["graph"] = m.graph.to_json().dump();
  return f;
}

void save_model(const std::string& path, const Model& m, const std::map<std::string, std::string>& extra_meta) {
  TensorFile f = model_to_file(m);
  for (auto& [k, v] : extra_meta) f.metadata[k] = v;
  save_safetensors(path, f);
}

Model model_from_file(const TensorFile& f, const std::string& what) {
  auto fmt = f.metadata.find("format");
  KD_CHECK(fmt != f.metadata.end() && fmt->second == kModelFormat, what, ": not a kd model (metadata 'format' should be '",
           kModelFormat, "')");
  auto g = f.metadata.find("graph");
  KD_CHECK(g != f.metadata.end(), what, ": metadata has no 'graph'");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(g->second);
  } catch (const nlohmann::json::exception& e) {
    fail(what, ": metadata 'graph' is not valid JSON: ", e.what());
  }
  Graph graph;
  try {
    graph = Graph::from_json(j);
  } catch (const Error& e) {
    fail(what, ": ", e.what());
  }
  // The file must hold every parameter and buffer of the graph before the model is allocated:
  // a small file whose graph claims gigabytes is refused without trying to allocate them.
  for (const ParamSpec& p : graph.param_specs()) {
    auto it = f.tensors.find(p.name);
    KD_CHECK(it != f.tensors.end(), what, ": missing tensor '", p.name, "'");
    KD_CHECK(it->second.dtype() == DType::f32 && it->second.shape() == p.shape, what, ": tensor '", p.name, "' is ",
             dtype_name(it->second.dtype()), " ", shape_str(it->second.shape()), ", the model expects f32 ",
             shape_str(p.shape));
  }
  Model m = Model::create(std::move(graph), 0);
  std::map<std::string, Tensor> s;
  for (auto& [k, t] : f.tensors)
    if (k.rfind("optim.", 0) != 0) s[k] = t;
  m.load_state(s, what);
  return m;
}

Model load_model(const std::string& path) { return model_from_file(load_safetensors(path), path); }

}  // namespace kd
