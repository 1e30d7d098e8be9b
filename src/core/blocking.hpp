#pragma once

// Runs blocking work (database calls, analysis of large texts) on a thread
// pool from a coroutine, so that event-loop threads never wait on it.

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "core/status.hpp"

namespace conveyor {

// Calls `work` on `pool` and resumes the awaiting coroutine on its own
// executor with the value. When `work` returns a Status or a Result<T>, an
// exception it throws becomes Status::Internal with the exception's text;
// any other `work` must not throw.
template <typename Work>
auto RunBlocking(boost::asio::thread_pool& pool, Work work) {
    using Value = std::invoke_result_t<Work&>;
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(Value)>(
        [&pool](auto handler, Work work) {
            auto executor = boost::asio::get_associated_executor(handler);
            boost::asio::post(pool, [handler = std::move(handler), work = std::move(work),
                                     executor]() mutable {
                std::optional<Value> value;
                if constexpr (std::is_constructible_v<Value, Status>) {
                    try {
                        value.emplace(work());
                    } catch (const std::exception& error) {
                        value.emplace(Status::Internal(error.what()));
                    }
                } else {
                    value.emplace(work());
                }
                boost::asio::dispatch(executor, [handler = std::move(handler),
                                                 value = std::move(*value)]() mutable {
                    std::move(handler)(std::move(value));
                });
            });
        },
        boost::asio::use_awaitable, std::move(work));
}

}  // namespace conveyor
