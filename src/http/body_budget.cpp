#include "http/body_budget.hpp"

#include <algorithm>
#include <utility>

namespace conveyor::http {

BodyBudget::Reservation::Reservation(Reservation&& other) noexcept
    : budget_(std::exchange(other.budget_, nullptr)),
      tenant_bytes_(std::exchange(other.tenant_bytes_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)) {}

BodyBudget::Reservation& BodyBudget::Reservation::operator=(Reservation&& other) noexcept {
    if (this != &other) {
        Release();
        budget_ = std::exchange(other.budget_, nullptr);
        tenant_bytes_ = std::exchange(other.tenant_bytes_, nullptr);
        bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
}

BodyBudget::Reservation::~Reservation() {
    Release();
}

void BodyBudget::Reservation::Release() {
    if (budget_ == nullptr) {
        return;
    }
    const std::lock_guard lock(budget_->mutex_);
    *tenant_bytes_ -= bytes_;
    budget_->reserved_total_.fetch_sub(bytes_, std::memory_order_relaxed);
    budget_ = nullptr;
    tenant_bytes_ = nullptr;
    bytes_ = 0;
}

bool BodyBudget::NearBound(std::string_view tenant, std::uint64_t bytes) {
    // Most requests come while no body is reserved, and skip the lock.
    if (max_per_tenant_ == 0 || reserved_total_.load(std::memory_order_relaxed) == 0) {
        return false;
    }
    const std::lock_guard lock(mutex_);
    const auto found = per_tenant_.find(tenant);
    return found != per_tenant_.end() && found->second > 0 &&
           bytes > max_per_tenant_ - std::min(found->second, max_per_tenant_);
}

bool BodyBudget::TryReserve(std::string_view tenant, std::uint64_t bytes,
                            Reservation& reservation) {
    if (max_per_tenant_ == 0) {
        return true;
    }
    const std::lock_guard lock(mutex_);
    auto found = per_tenant_.find(tenant);
    if (found == per_tenant_.end()) {
        found = per_tenant_.emplace(std::string(tenant), 0).first;
    }
    std::uint64_t& reserved = found->second;
    if (reserved > 0 && bytes > max_per_tenant_ - std::min(reserved, max_per_tenant_)) {
        return false;
    }
    reserved += bytes;
    reserved_total_.fetch_add(bytes, std::memory_order_relaxed);
    reservation.budget_ = this;
    reservation.tenant_bytes_ = &reserved;
    reservation.bytes_ = bytes;
    return true;
}

}  // namespace conveyor::http
