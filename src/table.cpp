#include "icp/table.hpp"

#include <cmath>

#include "icp/error.hpp"

namespace icp {

std::size_t Column::size() const noexcept {
  switch (type) {
    case ColumnType::numeric: return numeric.size();
    case ColumnType::categorical: return codes.size();
    case ColumnType::text: return text.size();
  }
  return 0;
}

bool Column::is_missing(std::size_t row) const noexcept {
  switch (type) {
    case ColumnType::numeric: return std::isnan(numeric[row]);
    case ColumnType::categorical: return codes[row] < 0;
    case ColumnType::text: return text[row].empty();
  }
  return true;
}

const Column* Table::find(std::string_view name) const noexcept {
  for (const auto& c : columns)
    if (c.name == name) return &c;
  return nullptr;
}

const Column& Table::at(std::string_view name) const {
  if (const Column* c = find(name)) return *c;
  throw Error(source + ": no column '" + std::string(name) + "' in the table");
}

}  // namespace icp
