#pragma once

#include "storage/task_store.hpp"

namespace conveyor {

// Returns `query` without the created_at bound on the side where the page
// resumes when the resume position is tighter, or without the position when
// the bound is tighter. The rows are the same either way. Both backends need
// it: with both present, SQLite 3.40 and PostgreSQL 15 start the index range
// at the looser of the two and step over every entry in between, so a deep
// page would read every row before it.
ListQuery TightenListBounds(ListQuery query);

}  // namespace conveyor
