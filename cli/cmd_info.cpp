// kd info: the graph of a model, with parameters and FLOPs per layer.
#include <cstdio>
#include <cstdlib>

#include "cli/commands.h"
#include "core/kernels/dispatch.h"
#include "cli/common.h"
#include "cli/info_int8.h"

namespace kd::cli {

int cmd_info(int argc, char** argv) {
  Args a("info",
         "Prints a model's graph: each node's op, inputs, output shape, parameters and FLOPs per image\n"
         "(FLOPs = 2 x multiply-accumulates of conv/linear, plus one per BN output element).",
         {{"--model", "FILE", "model file (.safetensors)"},
          {"--config", "FILE", "or a training config: describes its freshly built model"},
          {"--kernels", "", "list the kernel variant chosen for each kernel on this CPU (KD_KERNELS overrides)"},
          {"--json", "", "print JSON (graph plus per-node facts)"}});
  if (!a.parse(argc, argv, 2)) return 0;
  if (a.has("--kernels")) {
    using namespace kd::kernels;
    const Isa sel = selected_isa();
    if (a.has("--json")) {
      nlohmann::json j = {{"selected", isa_name(sel)}, {"kernels", nlohmann::json::array()}};
      for (Isa i : {Isa::ref, Isa::avx2, Isa::avx512, Isa::neon})
        j["available"][isa_name(i)] = isa_compiled(i) && isa_supported(i);
      for (const KernelVariant& k : kernel_variants())
        j["kernels"].push_back({{"kernel", k.kernel}, {"variant", k.variant}, {"how", k.note}});
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    std::printf("instruction sets: ");
    for (Isa i : {Isa::ref, Isa::avx2, Isa::avx512, Isa::neon})
      std::printf("%s%s ", isa_name(i), !isa_compiled(i) ? " (not built)" : !isa_supported(i) ? " (not on this CPU)" : "");
    std::printf("\nselected: %s%s\n\n", isa_name(sel), std::getenv("KD_KERNELS") ? " (from KD_KERNELS)" : " (best available)");
    for (const KernelVariant& k : kernel_variants())
      std::printf("%-58s %-7s %s\n", k.kernel.c_str(), k.variant.c_str(), k.note.c_str());
    return 0;
  }
  if (a.has("--model") && quant::is_int8_file(*a.str("--model"))) {
    print_int8_info(quant::load_int8(*a.str("--model")), a.has("--json"));
    return 0;
  }
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
