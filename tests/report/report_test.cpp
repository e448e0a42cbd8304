#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "fixtures.hpp"
#include "report/report.hpp"
#include "report/rows.hpp"
#include "report/run_outputs.hpp"
#include "util/png.hpp"

namespace shardgan {
namespace {

TEST(Report, Base64KnownVectors) {
  EXPECT_EQ(report::base64(""), "");
  EXPECT_EQ(report::base64("f"), "Zg==");
  EXPECT_EQ(report::base64("fo"), "Zm8=");
  EXPECT_EQ(report::base64("foo"), "Zm9v");
  EXPECT_EQ(report::base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(report::base64(std::string("\xff\x00\x10", 3)), "/wAQ");
}

TEST(Report, HasEveryCurveTheSamplesAndTheEscapedConfig) {
  report::ReportInfo info{"run <1>", "[data]\npath = \"a<b\"\n", 2, "cpu", 128, 100, {"cat", "dog"}};
  std::vector<report::MetricsRow> rows;
  for (int64_t s = 10; s <= 100; s += 10) {
    report::MetricsRow r;
    r.step = s;
    r.epoch = s / 50;
    r.loss_d = 1.0 + 0.01 * s;
    r.loss_g = 0.7;
    r.d_real = 0.6;
    r.d_fake = 0.4;
    r.img_per_s = 400;
    r.elapsed_s = 0.1 * s;
    rows.push_back(r);
  }
  rows.back().augment_p = 0.25;
  const auto eval_at = [](int64_t step, double fd, double consistency) {
    report::EvalRow e;
    e.step = step;
    e.epoch_fraction = static_cast<double>(step) / 50;
    e.fd_clf = fd;
    e.class_consistency = consistency;
    e.precision = 0.625;
    e.recall = 0.375;
    e.n = 100;
    e.generator = "ema";
    return e;
  };
  std::vector<report::EvalRow> evals{eval_at(0, 300, 0.1), eval_at(50, 40, 0.8)};
  const std::string html = report::render_report(info, rows, evals, {{"epoch-0001", "\x89PNG"}});
  EXPECT_NE(html.find("<td>0.625</td><td>0.375</td>"), std::string::npos);  // precision, recall per evaluation
  for (const char* curve : {"loss_d", "loss_g", "D(x)", "D(G(z))", "img/s", "p", "FD-clf", "class consistency"})
    EXPECT_NE(html.find(std::string("class=\"curve\" data-name=\"") + curve), std::string::npos) << curve;
  EXPECT_NE(html.find("data:image/png;base64,iVBORw=="), std::string::npos);
  EXPECT_NE(html.find("path = &quot;a&lt;b&quot;"), std::string::npos);
  EXPECT_NE(html.find("run &lt;1&gt;"), std::string::npos);
  EXPECT_EQ(html.find("http://"),
            html.find("http://www.w3.org/2000/svg"));  // no link leaves the file but the SVG namespace
  EXPECT_EQ(html.find("<script"), std::string::npos);
  // Without metrics or rows: still a page, no metric charts.
  const std::string empty = report::render_report(info, {}, {}, {});
  EXPECT_EQ(empty.find("FD-clf"), std::string::npos);
  EXPECT_NE(empty.find("no samples yet"), std::string::npos);
}

TEST(RunOutputs, ResumeMovesGridsOfTheReplacedHistoryAsideAndTheReportKeepsAtMost24) {
  testing::TempDir tmp;
  const auto samples = tmp.path() / "samples";
  std::filesystem::create_directories(samples);
  const Image grid(4, 4, 1, 128);
  for (const char* name : {"epoch-0001.png", "epoch-0003.png", "step-000050.png", "step-000200.png"})
    write_png(samples / name, grid);
  // Resumed from step 100 with 50 steps per epoch: epoch 3 (step 150) and step 200 were written after it.
  report::RunOutputs outputs(tmp.path(), 100, 1000, 50);
  EXPECT_TRUE(std::filesystem::exists(samples / "epoch-0001.png"));
  EXPECT_TRUE(std::filesystem::exists(samples / "step-000050.png"));
  EXPECT_FALSE(std::filesystem::exists(samples / "epoch-0003.png"));
  EXPECT_FALSE(std::filesystem::exists(samples / "step-000200.png"));
  EXPECT_TRUE(std::filesystem::exists(samples / "rejected" / "epoch-0003.png"));  // moved aside, not deleted
  EXPECT_TRUE(std::filesystem::exists(samples / "rejected" / "step-000200.png"));
  for (int i = 0; i < 40; ++i) write_png(samples / ("step-" + std::to_string(100000 + i) + ".png"), grid);
  outputs.write_report(report::ReportInfo{"r", "", 1, "cpu", 8, 1000, {}});
  std::ifstream in(tmp.path() / "report.html");
  const std::string html((std::istreambuf_iterator<char>(in)), {});
  std::size_t images = 0;
  for (std::size_t at = html.find("data:image/png"); at != std::string::npos; at = html.find("data:image/png", at + 1))
    ++images;
  EXPECT_EQ(images, 24u);
  EXPECT_NE(html.find("step-100039"), std::string::npos);  // the newest is always there
}

TEST(Rows, MetricsJsonlRowsRoundTripAndOtherLinesAreNoRows) {
  report::MetricsRow m;
  m.step = 40;
  m.epoch = 2;
  m.loss_d = 1.25;
  m.loss_g = 0.5;
  m.d_real = 0.75;
  m.d_fake = 0.25;
  m.img_per_s = 300;
  m.elapsed_s = 9.5;
  const auto m_json = nlohmann::ordered_json::parse(report::to_json(m).dump());
  const auto m_back = report::parse_metrics_row(m_json);
  ASSERT_TRUE(m_back);
  EXPECT_EQ(m_back->step, 40);
  EXPECT_EQ(m_back->epoch, 2);
  EXPECT_EQ(m_back->loss_d, 1.25);
  EXPECT_EQ(m_back->elapsed_s, 9.5);
  EXPECT_FALSE(m_back->loss_scale);  // fp32/bf16 rows carry no loss scale
  EXPECT_FALSE(m_json.contains("loss_scale"));
  EXPECT_FALSE(report::parse_eval_row(m_json));
  m.loss_scale = 32768;
  m.skipped_updates = 3;
  const auto fp16_back = report::parse_metrics_row(nlohmann::ordered_json::parse(report::to_json(m).dump()));
  ASSERT_TRUE(fp16_back);
  EXPECT_EQ(fp16_back->loss_scale, 32768);
  EXPECT_EQ(fp16_back->skipped_updates, 3);

  report::EvalRow e;
  e.step = 50;
  e.epoch_fraction = 1.5;
  e.fd_clf = 12;
  e.class_consistency = 0.8;
  e.per_class = {0.9, 0.7};
  e.n = 100;
  e.generator = "ema";
  const auto e_json = nlohmann::ordered_json::parse(report::to_json(e, {"zebra", "ant"}).dump());
  EXPECT_EQ(e_json["kind"], "eval");
  EXPECT_EQ(e_json["class_consistency_per_class"]["zebra"], 0.9);
  const auto e_back = report::parse_eval_row(e_json);
  ASSERT_TRUE(e_back);
  EXPECT_EQ(e_back->per_class, (std::vector<double>{0.9, 0.7}));  // in class order, not sorted by name
  EXPECT_EQ(*e_back->class_consistency, 0.8);
  EXPECT_EQ(e_back->generator, "ema");
  EXPECT_FALSE(report::parse_metrics_row(e_json));

  EXPECT_FALSE(report::parse_metrics_row(nlohmann::ordered_json::parse(R"({"step":"x","loss_d":1})")));
  EXPECT_FALSE(report::parse_eval_row(nlohmann::ordered_json::parse(R"({"kind":"other","step":1})")));
}

TEST(RunOutputs, ResumeKeepsTheRowsUpToTheResumeStepAndMovesTheRestAside) {
  testing::TempDir tmp;
  testing::write_text(tmp.path() / "metrics.jsonl",
                      "{\"step\":50,\"epoch\":0,\"loss_d\":null,\"loss_g\":2.0,\"d_real\":\"x\"}\n"
                      "not json\n"
                      "{\"kind\":\"eval\",\"step\":100,\"epoch\":1.0,\"fd_clf\":null,\"n\":\"many\"}\n"
                      "{\"step\":150,\"epoch\":1,\"loss_d\":1.0,\"loss_g\":2.0}\n");
  report::RunOutputs outputs(tmp.path(), 100, 1000, 50);
  auto lines_of = [](const std::filesystem::path& file) {
    std::ifstream in(file);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  };
  const auto kept = lines_of(tmp.path() / "metrics.jsonl");
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_NE(kept[0].find("\"step\":50"), std::string::npos);
  EXPECT_NE(kept[1].find("\"kind\":\"eval\""), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "metrics.jsonl.tmp"));
  const auto rejected = lines_of(tmp.path() / "metrics.rejected.jsonl");
  ASSERT_EQ(rejected.size(), 2u);  // the broken line and the later history: kept aside, not lost
  EXPECT_EQ(rejected[0], "not json");
  EXPECT_NE(rejected[1].find("\"step\":150"), std::string::npos);
}

// What the tools write they read back: a NaN or infinite loss (written as null, as JSON has no NaN) and values of
// the wrong type never make a resume fail.
TEST(Rows, NonFiniteValuesRoundTripAsNaN) {
  report::MetricsRow m;
  m.step = 7;
  m.loss_d = std::numeric_limits<double>::quiet_NaN();
  m.loss_g = std::numeric_limits<double>::infinity();
  const auto back = report::parse_metrics_row(nlohmann::ordered_json::parse(report::to_json(m).dump()));
  ASSERT_TRUE(back);
  EXPECT_TRUE(std::isnan(back->loss_d));
  EXPECT_TRUE(std::isnan(back->loss_g));
  const auto e = report::parse_eval_row(nlohmann::ordered_json::parse(
      "{\"kind\":\"eval\",\"step\":3,\"fd_clf\":null,\"n\":\"x\",\"generator\":7,\"d_real\":[1]}"));
  ASSERT_TRUE(e);
  EXPECT_TRUE(std::isnan(e->fd_clf));
  EXPECT_EQ(e->n, 0);
  EXPECT_EQ(e->generator, "");
  EXPECT_FALSE(report::parse_eval_row(nlohmann::ordered_json::parse("{\"kind\":5,\"step\":3}")));
}

}  // namespace
}  // namespace shardgan
