#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace conveyor::http {

// Bounds the bytes of request bodies that each tenant has in the server at
// once, from the moment a body starts to arrive until its response is
// ready. Without it, a tenant could open many connections and send a body
// of the largest size on each, and make the server hold all of them. A
// bound of 0 is off. Thread-safe. The map grows by one entry per tenant
// seen, which the API keys file bounds.
class BodyBudget {
  public:
    // A reservation of one admitted body's bytes, given back when it is
    // destroyed. Move-only. A default-constructed one reserves nothing.
    class Reservation {
      public:
        Reservation() = default;
        Reservation(Reservation&& other) noexcept;
        Reservation& operator=(Reservation&& other) noexcept;
        Reservation(const Reservation&) = delete;
        Reservation& operator=(const Reservation&) = delete;
        ~Reservation();

      private:
        friend class BodyBudget;
        void Release();

        BodyBudget* budget_ = nullptr;
        std::uint64_t* tenant_bytes_ = nullptr;
        std::uint64_t bytes_ = 0;
    };

    explicit BodyBudget(std::uint64_t max_per_tenant) : max_per_tenant_(max_per_tenant) {}

    // Reserves `bytes` for a body of `tenant` and fills `reservation`, or
    // returns false, leaving it empty, when the tenant would pass its bound.
    // A body is always admitted when the tenant has nothing reserved, so a
    // bound below the largest body still lets bodies through one at a time.
    bool TryReserve(std::string_view tenant, std::uint64_t bytes, Reservation& reservation);

    std::uint64_t MaxPerTenant() const { return max_per_tenant_; }

    // Returns true when `tenant` has bytes reserved and less than `bytes`
    // left before its bound.
    bool NearBound(std::string_view tenant, std::uint64_t bytes);

  private:
    struct TenantHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view tenant) const {
            return std::hash<std::string_view>{}(tenant);
        }
    };

    const std::uint64_t max_per_tenant_;
    std::mutex mutex_;
    // Bytes reserved by all tenants, so NearBound can skip the lock at 0.
    std::atomic<std::uint64_t> reserved_total_{0};
    // Reserved bytes of each tenant, guarded by mutex_; entries are never
    // erased, so a Reservation may keep a pointer to its count.
    std::unordered_map<std::string, std::uint64_t, TenantHash, std::equal_to<>> per_tenant_;
};

}  // namespace conveyor::http
