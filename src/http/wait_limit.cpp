#include "http/wait_limit.hpp"

#include <utility>

namespace conveyor::http {

WaitLimit::Slot::Slot(Slot&& other) noexcept
    : limit_(std::exchange(other.limit_, nullptr)),
      tenant_waiting_(std::exchange(other.tenant_waiting_, nullptr)) {}

WaitLimit::Slot& WaitLimit::Slot::operator=(Slot&& other) noexcept {
    if (this != &other) {
        Release();
        limit_ = std::exchange(other.limit_, nullptr);
        tenant_waiting_ = std::exchange(other.tenant_waiting_, nullptr);
    }
    return *this;
}

WaitLimit::Slot::~Slot() {
    Release();
}

void WaitLimit::Slot::Release() {
    if (limit_ == nullptr) {
        return;
    }
    const std::lock_guard lock(limit_->mutex_);
    --limit_->waiting_;
    if (tenant_waiting_ != nullptr) {
        --*tenant_waiting_;
    }
    limit_ = nullptr;
    tenant_waiting_ = nullptr;
}

WaitLimit::Outcome WaitLimit::TryAdmit(std::string_view tenant, Slot& slot) {
    slot = Slot();
    const std::lock_guard lock(mutex_);
    if (max_total_ > 0 && waiting_ >= max_total_) {
        return Outcome::kServerAtBound;
    }
    std::size_t* tenant_waiting = nullptr;
    if (max_per_tenant_ > 0) {
        auto found = per_tenant_.find(tenant);
        if (found == per_tenant_.end()) {
            found = per_tenant_.emplace(std::string(tenant), 0).first;
        }
        if (found->second >= max_per_tenant_) {
            return Outcome::kTenantAtBound;
        }
        tenant_waiting = &found->second;
        ++*tenant_waiting;
    }
    ++waiting_;
    slot.limit_ = this;
    slot.tenant_waiting_ = tenant_waiting;
    return Outcome::kAdmitted;
}

std::size_t WaitLimit::Waiting() {
    const std::lock_guard lock(mutex_);
    return waiting_;
}

}  // namespace conveyor::http
