#include "storage/list_bounds.hpp"

namespace conveyor {

ListQuery TightenListBounds(ListQuery query) {
    if (!query.after) {
        return query;
    }
    const UnixMillis resume_at = query.after->created_at;
    if (query.descending && query.created_before) {
        // Rows before the position all have created_at <= resume_at.
        if (resume_at < *query.created_before) {
            query.created_before.reset();
        } else {
            query.after.reset();
        }
    } else if (!query.descending && query.created_after) {
        // Rows past the position all have created_at >= resume_at.
        if (resume_at > *query.created_after) {
            query.created_after.reset();
        } else {
            query.after.reset();
        }
    }
    return query;
}

}  // namespace conveyor
