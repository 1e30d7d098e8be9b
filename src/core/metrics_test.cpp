#include "core/metrics.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace conveyor::metrics {
namespace {

constexpr double kBounds[] = {0.1, 1, 10};

TEST(Histogram, BoundsAreInclusive) {
    Histogram histogram(kBounds);
    histogram.Observe(0.1);
    histogram.Observe(1);
    const Histogram::Snapshot snapshot = histogram.Read();
    EXPECT_EQ(snapshot.cumulative[0], 1u);
    EXPECT_EQ(snapshot.cumulative[1], 2u);
}

TEST(Histogram, CountsAreCumulative) {
    Histogram histogram(kBounds);
    for (const double value : {0.05, 0.5, 0.7, 5.0, 50.0}) {
        histogram.Observe(value);
    }
    const Histogram::Snapshot snapshot = histogram.Read();
    ASSERT_EQ(snapshot.cumulative.size(), 3u);
    EXPECT_EQ(snapshot.cumulative[0], 1u);
    EXPECT_EQ(snapshot.cumulative[1], 3u);
    EXPECT_EQ(snapshot.cumulative[2], 4u);
    EXPECT_EQ(snapshot.count, 5u) << "the +Inf bucket counts every observation";
    EXPECT_DOUBLE_EQ(snapshot.sum, 56.25);
}

TEST(Histogram, ConcurrentObservationsAreAllCounted) {
    Histogram histogram(kBounds);
    constexpr int kThreads = 4;
    constexpr int kEach = 10'000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&histogram] {
            for (int i = 0; i < kEach; ++i) {
                histogram.Observe(0.5);
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    const Histogram::Snapshot snapshot = histogram.Read();
    EXPECT_EQ(snapshot.count, static_cast<std::uint64_t>(kThreads * kEach));
    EXPECT_EQ(snapshot.cumulative[1], static_cast<std::uint64_t>(kThreads * kEach));
    EXPECT_DOUBLE_EQ(snapshot.sum, 0.5 * kThreads * kEach);
}

TEST(Counter, AddsAcrossThreads) {
    Counter counter;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&counter] {
            for (int i = 0; i < 1000; ++i) {
                counter.Add();
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(counter.Value(), 4000u);
}

TEST(FormatValue, UsesShortestForm) {
    EXPECT_EQ(FormatValue(0.005), "0.005");
    EXPECT_EQ(FormatValue(2.5), "2.5");
    EXPECT_EQ(FormatValue(60), "60");
    EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
    EXPECT_EQ(FormatValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(ExpositionWriter, WritesFamilyAndSamples) {
    ExpositionWriter writer;
    writer.Family("conveyor_things_total", "counter", "Things done.");
    writer.Sample("conveyor_things_total", {{"kind", "a"}, {"route", "/v1/tasks"}},
                  std::uint64_t{7});
    writer.Sample("conveyor_things_total", {}, std::int64_t{-2});
    EXPECT_EQ(writer.text(),
              "# HELP conveyor_things_total Things done.\n"
              "# TYPE conveyor_things_total counter\n"
              "conveyor_things_total{kind=\"a\",route=\"/v1/tasks\"} 7\n"
              "conveyor_things_total -2\n");
}

TEST(ExpositionWriter, EscapesLabelValuesAndHelp) {
    ExpositionWriter writer;
    writer.Family("m", "gauge", "a\\b\nc");
    writer.Sample("m", {{"l", "q\"b\\n\nx"}}, 1.5);
    EXPECT_EQ(writer.text(),
              "# HELP m a\\\\b\\nc\n"
              "# TYPE m gauge\n"
              "m{l=\"q\\\"b\\\\n\\nx\"} 1.5\n");
}

TEST(ExpositionWriter, WritesHistogramWithInfBucket) {
    Histogram histogram(kBounds);
    histogram.Observe(0.5);
    histogram.Observe(20);
    ExpositionWriter writer;
    writer.HistogramSamples("h_seconds", {{"method", "GET"}}, histogram.bounds(), histogram.Read());
    EXPECT_EQ(writer.text(),
              "h_seconds_bucket{method=\"GET\",le=\"0.1\"} 0\n"
              "h_seconds_bucket{method=\"GET\",le=\"1\"} 1\n"
              "h_seconds_bucket{method=\"GET\",le=\"10\"} 1\n"
              "h_seconds_bucket{method=\"GET\",le=\"+Inf\"} 2\n"
              "h_seconds_sum{method=\"GET\"} 20.5\n"
              "h_seconds_count{method=\"GET\"} 2\n");
}

}  // namespace
}  // namespace conveyor::metrics
