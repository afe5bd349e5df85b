// kd info: the graph of a model, with parameters and FLOPs per layer.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"

namespace kd::cli {

int cmd_info(int argc, char** argv) {
  Args a("info",
         "Prints a model's graph: each node's op, inputs, output shape, parameters and FLOPs per image\n"
         "(FLOPs = 2 x multiply-accumulates of conv/linear, plus one per BN output element).",
         {{"--model", "FILE", "model file (.safetensors)"},
          {"--config", "FILE", "or a training config: describes its freshly built model"},
          {"--json", "", "print JSON (graph plus per-node facts)"}});
  if (!a.parse(argc, argv, 2)) return 0;
  Model m = model_from_args(a, "info");
  std::vector<NodeInfo> info = m.graph.validate();
  int64_t params = 0, flops = 0;
  for (const NodeInfo& i : info) params += i.params, flops += 2 * i.macs;
  if (a.has("--json")) {
    nlohmann::json nodes = nlohmann::json::array();
    for (size_t k = 0; k < info.size(); ++k) {
      const Node& n = m.graph.nodes[k];
      nodes.push_back({{"name", n.name}, {"op", n.op}, {"inputs", n.inputs}, {"attrs", n.attrs},
                       {"output_shape", info[k].out_shape}, {"params", info[k].params}, {"flops", 2 * info[k].macs}});
    }
    std::printf("%s\n", nlohmann::json{{"input_shape", m.graph.input_shape}, {"output", m.graph.output},
                                       {"params", params}, {"flops", flops}, {"nodes", nodes}}.dump(1).c_str());
    return 0;
  }
  std::printf("%-22s %-15s %-20s %-16s %10s %14s\n", "node", "op", "input(s)", "output [C,H,W]", "params", "FLOPs");
  for (size_t k = 0; k < info.size(); ++k) {
    const Node& n = m.graph.nodes[k];
    std::string in;
    for (auto& s : n.inputs) in += (in.empty() ? "" : ",") + s;
    std::printf("%-22s %-15s %-20s %-16s %10s %14s\n", n.name.c_str(), n.op.c_str(), in.c_str(),
                shape_str(info[k].out_shape).c_str(), with_commas(info[k].params).c_str(),
                with_commas(2 * info[k].macs).c_str());
  }
  std::printf("total: %s parameters, %s FLOPs per image (%.1f MFLOPs)\n", with_commas(params).c_str(),
              with_commas(flops).c_str(), double(flops) / 1e6);
  return 0;
}

}  // namespace kd::cli
