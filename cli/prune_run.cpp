#include "cli/prune_run.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/common.h"
#include "distill/distiller.h"
#include "nn/atomic_file.h"
#include "nn/model_io.h"
#include "prune/taylor.h"

namespace kd::cli {

Objective finetune_objective(const DistilledFinetune& d, const TrainConfig& tc, const Model& student,
                             int64_t train_rows) {
  if (d.teacher.empty()) return {};
  distill::DistillConfig dc;
  dc.student = tc;
  dc.teachers = {{d.teacher, 1.0}};
  dc.temperature = {"constant", d.temperature, d.temperature};
  dc.alpha = {"constant", d.alpha, d.alpha};
  return distill::make_objective(dc, student, train_rows);
}

prune::Importance measured_importance(const Model& m, const prune::PlanOptions& plan, const Dataset& train,
                                      int64_t images, int64_t batch) {
  if (plan.criterion != prune::Criterion::taylor) return {};
  KD_CHECK(train.size() > 0, "the taylor criterion needs training images to measure importance on");
  return prune::taylor_importance(m, prune::channel_groups(m), train, images, batch);
}

Model progressive_prune(const Model& m, const prune::PlanOptions& plan, const ProgressiveOptions& po,
                        const TrainConfig* finetune, const Datasets& data, const std::string& out) {
  const DistilledFinetune& distilled = po.distilled;
  const double step = po.step;
  std::filesystem::create_directories(out);
  // Cumulative ratio after step k: ratio * k / steps; each step removes, relative to the model it
  // starts from, 1 - (1 - r_k) / (1 - r_{k-1}).
  const int64_t steps = std::max<int64_t>(1, int64_t(std::ceil(plan.ratio / step - 1e-9)));
  Model cur = m;
  for (int64_t k = 1; k <= steps; ++k) {
    const double r_prev = plan.ratio * double(k - 1) / double(steps), r_k = plan.ratio * double(k) / double(steps);
    prune::PlanOptions o = plan;
    o.ratio = 1.0 - (1.0 - r_k) / (1.0 - r_prev);
    const prune::Importance imp = k == 1 && !po.first_importance.empty()
                                      ? po.first_importance
                                      : measured_importance(cur, o, data.train, po.taylor_images, po.taylor_batch);
    if (k == steps && po.flops_target > 0)
      o.ratio = prune::ratio_for_flops(cur, o, po.flops_target / double(prune::model_flops(cur)), imp);
    const prune::Plan p = prune::make_plan(cur, o, imp);
    write_file_atomic(out + "/plan-step" + std::to_string(k) + ".json", p.to_json().dump(1) + "\n");
    Model next = prune::pruned_model(cur, p);
    std::printf("== pruning step %lld/%lld: removed %lld channels, %s parameters left\n", (long long)k,
                (long long)steps, (long long)p.removed(), with_commas(next.num_params()).c_str());
    std::fflush(stdout);
    if (finetune) {
      const std::string dir = out + "/step" + std::to_string(k);
      TrainConfig tc = *finetune;
      tc.seed = finetune->seed + uint64_t(k);
      if (k == steps && po.last_step_epochs >= 0) tc.epochs = po.last_step_epochs;
      if (std::filesystem::exists(dir + "/model.safetensors")) {  // finished earlier: reuse
        Model done = load_model(dir + "/model.safetensors");
        KD_CHECK(done.graph.to_json() == next.graph.to_json(), dir,
                 "/model.safetensors was pruned differently (another config?): remove ", dir, " or choose another 'out'");
        next = std::move(done);
        std::printf("== pruning step %lld: already fine-tuned in %s\n", (long long)k, dir.c_str());
      } else {
        TrainOptions opts;
        opts.out_dir = dir;
        opts.resume = std::filesystem::exists(dir + "/checkpoint.safetensors");
        opts.objective = finetune_objective(distilled, tc, next, data.train.size());
        run_with_progress(next, tc, data, opts,
                          opts.resume ? "resuming fine-tuning of"
                                      : (distilled.teacher.empty() ? "fine-tuning" : "distilled fine-tuning of"));
      }
    }
    cur = std::move(next);
  }
  return cur;
}

}  // namespace kd::cli
