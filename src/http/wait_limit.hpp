#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace conveyor::http {

// Bounds the long polls that wait at the same time: per tenant, so that one
// tenant cannot hold every connection, and in total, so that waiting
// requests leave connections free for others such as /healthz. A bound of 0
// is off. Thread-safe. The map grows by one entry per tenant seen, which the
// API keys file bounds.
class WaitLimit {
  public:
    enum class Outcome { kAdmitted, kTenantAtBound, kServerAtBound };

    // The place of one admitted long poll, freed when the slot is destroyed.
    // Move-only. A default-constructed slot is empty and frees nothing.
    class Slot {
      public:
        Slot() = default;
        Slot(Slot&& other) noexcept;
        Slot& operator=(Slot&& other) noexcept;
        Slot(const Slot&) = delete;
        Slot& operator=(const Slot&) = delete;
        ~Slot();

      private:
        friend class WaitLimit;
        void Release();

        WaitLimit* limit_ = nullptr;
        std::size_t* tenant_waiting_ = nullptr;  // the tenant's count, or null
    };

    WaitLimit(std::size_t max_per_tenant, std::size_t max_total)
        : max_per_tenant_(max_per_tenant), max_total_(max_total) {}

    // Admits one more waiting long poll of `tenant` and fills `slot`, or
    // returns the bound that it would exceed and leaves `slot` empty.
    Outcome TryAdmit(std::string_view tenant, Slot& slot);

    std::size_t MaxPerTenant() const { return max_per_tenant_; }
    std::size_t MaxTotal() const { return max_total_; }

    // Long polls holding a slot now.
    std::size_t Waiting();

  private:
    // Lets the map find a tenant by std::string_view without a copy.
    struct TenantHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view tenant) const {
            return std::hash<std::string_view>{}(tenant);
        }
    };

    const std::size_t max_per_tenant_;
    const std::size_t max_total_;
    std::mutex mutex_;
    std::size_t waiting_ = 0;  // guarded by mutex_
    // Waiting long polls of each tenant, guarded by mutex_; entries are never
    // erased, so a Slot may keep a pointer to its count.
    std::unordered_map<std::string, std::size_t, TenantHash, std::equal_to<>> per_tenant_;
};

}  // namespace conveyor::http
