#include "core/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace conveyor::metrics {

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::Observe(double value) {
    // The first bound at least `value`: bounds are inclusive upper bounds.
    const auto bound = std::lower_bound(bounds_.begin(), bounds_.end(), value);
    const auto index = static_cast<std::size_t>(bound - bounds_.begin());
    buckets_[index].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
    Snapshot snapshot;
    snapshot.cumulative.reserve(bounds_.size());
    std::uint64_t running = 0;
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
        running += buckets_[i].load(std::memory_order_relaxed);
        snapshot.cumulative.push_back(running);
    }
    running += buckets_[bounds_.size()].load(std::memory_order_relaxed);
    snapshot.count = running;
    snapshot.sum = sum_.load(std::memory_order_relaxed);
    return snapshot;
}

namespace {

// Escapes a label value: backslash, double quote and line feed.
void AppendLabelValue(std::string& out, std::string_view value) {
    for (const char c : value) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out.push_back(c);
        }
    }
}

// Escapes HELP text: backslash and line feed.
void AppendHelp(std::string& out, std::string_view help) {
    for (const char c : help) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out.push_back(c);
        }
    }
}

}  // namespace

std::string FormatValue(double value) {
    if (std::isnan(value)) {
        return "NaN";
    }
    if (std::isinf(value)) {
        return value > 0 ? "+Inf" : "-Inf";
    }
    char buffer[32];
    const auto written = std::to_chars(buffer, buffer + sizeof buffer, value);
    return std::string(buffer, written.ptr);
}

void ExpositionWriter::Family(std::string_view name, std::string_view type, std::string_view help) {
    text_ += "# HELP ";
    text_ += name;
    text_.push_back(' ');
    AppendHelp(text_, help);
    text_ += "\n# TYPE ";
    text_ += name;
    text_.push_back(' ');
    text_ += type;
    text_.push_back('\n');
}

void ExpositionWriter::BeginSample(std::string_view name, std::span<const Label> labels,
                                   std::string_view extra_name, std::string_view extra_value) {
    text_ += name;
    if (labels.empty() && extra_name.empty()) {
        text_.push_back(' ');
        return;
    }
    text_.push_back('{');
    bool first = true;
    auto append = [&](std::string_view label_name, std::string_view label_value) {
        if (!first) {
            text_.push_back(',');
        }
        first = false;
        text_ += label_name;
        text_ += "=\"";
        AppendLabelValue(text_, label_value);
        text_.push_back('"');
    };
    for (const Label& label : labels) {
        append(label.name, label.value);
    }
    if (!extra_name.empty()) {
        append(extra_name, extra_value);
    }
    text_ += "} ";
}

void ExpositionWriter::Sample(std::string_view name, std::initializer_list<Label> labels,
                              double value) {
    BeginSample(name, std::span(labels.begin(), labels.size()));
    text_ += FormatValue(value);
    text_.push_back('\n');
}

void ExpositionWriter::Sample(std::string_view name, std::initializer_list<Label> labels,
                              std::int64_t value) {
    BeginSample(name, std::span(labels.begin(), labels.size()));
    text_ += std::to_string(value);
    text_.push_back('\n');
}

void ExpositionWriter::Sample(std::string_view name, std::initializer_list<Label> labels,
                              std::uint64_t value) {
    BeginSample(name, std::span(labels.begin(), labels.size()));
    text_ += std::to_string(value);
    text_.push_back('\n');
}

void ExpositionWriter::HistogramSamples(std::string_view name, std::initializer_list<Label> labels,
                                        std::span<const double> bounds,
                                        const Histogram::Snapshot& snapshot) {
    const std::span<const Label> label_span(labels.begin(), labels.size());
    const std::string bucket_name = std::string(name) + "_bucket";
    for (std::size_t i = 0; i < bounds.size() && i < snapshot.cumulative.size(); ++i) {
        BeginSample(bucket_name, label_span, "le", FormatValue(bounds[i]));
        text_ += std::to_string(snapshot.cumulative[i]);
        text_.push_back('\n');
    }
    BeginSample(bucket_name, label_span, "le", "+Inf");
    text_ += std::to_string(snapshot.count);
    text_.push_back('\n');
    BeginSample(std::string(name) + "_sum", label_span);
    text_ += FormatValue(snapshot.sum);
    text_.push_back('\n');
    BeginSample(std::string(name) + "_count", label_span);
    text_ += std::to_string(snapshot.count);
    text_.push_back('\n');
}

ServiceCounters& Service() {
    static ServiceCounters counters;
    return counters;
}

}  // namespace conveyor::metrics
