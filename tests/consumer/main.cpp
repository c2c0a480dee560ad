// Segments four points into two groups through the installed library and checks the answer.
#include <icp/kmeans.hpp>
#include <icp/matrix.hpp>

#include <cstdio>

int main() {
  icp::Matrix x(4, 1);
  x(0, 0) = 0.0f;
  x(1, 0) = 0.1f;
  x(2, 0) = 10.0f;
  x(3, 0) = 10.1f;
  icp::KMeansOptions o;
  o.k = 2;
  const icp::KMeansResult r = icp::kmeans_fit(x, o);
  const bool ok = r.assignment[0] == r.assignment[1] && r.assignment[2] == r.assignment[3] &&
                  r.assignment[0] != r.assignment[2];
  std::printf("consumer: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
