#include "icp/generate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "icp/error.hpp"

namespace icp {

namespace {

// ---------------------------------------------------------------------------------------------
// Randomness. One small generator per row, seeded from (seed, row): rows are independent of each
// other, so the output never depends on how (or how far) generation is split, and the first n
// rows of any file equal an n-row file. Distributions are hand-written because the standard
// library's (normal_distribution etc.) differ between implementations.

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// xoshiro256**: fast, 256-bit state, passes BigCrush; more than enough for synthetic data.
class Rng {
 public:
  Rng(std::uint64_t seed, std::uint64_t row) noexcept {
    std::uint64_t sm = seed;
    const std::uint64_t mixed = splitmix64(sm) ^ (row * 0xD1B54A32D192ED03ULL);
    sm = mixed;
    for (auto& word : s_) word = splitmix64(sm);
  }

  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform in [0, 1).
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  bool bernoulli(double p) noexcept { return uniform() < p; }

  /// Standard normal (Box-Muller; the second value is discarded to keep the draw count fixed).
  double normal() noexcept {
    const double u1 = 1.0 - uniform();  // (0, 1]: log() stays finite
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.14159265358979323846 * u2);
  }

  std::int64_t poisson(double mean) noexcept {
    // Knuth's product method is exact and cheap for the small means used here; beyond that a
    // rounded normal is indistinguishable for synthetic counts.
    if (mean < 30.0) {
      const double limit = std::exp(-mean);
      std::int64_t k = 0;
      double p = uniform();
      while (p > limit) {
        ++k;
        p *= uniform();
      }
      return k;
    }
    return std::max<std::int64_t>(0, std::llround(mean + std::sqrt(mean) * normal()));
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

// ---------------------------------------------------------------------------------------------
// The planted world.

/// Founding years are relative to a fixed year, not the clock, so output never depends on the date.
constexpr int kReferenceYear = 2026;
constexpr int kOldestYear = 1850;
constexpr std::int64_t kMaxEmployees = 500000;

// Overlap between segments: with these probabilities a categorical value comes from the
// population-wide background instead of the segment's own mix.
constexpr double kIndustryNoise = 0.12;
constexpr double kCountryNoise = 0.15;
constexpr double kStageNoise = 0.10;

// Missing cells (each column independently). All within the 3-8% the demo is meant to show.
constexpr double kMissingEmployees = 0.045;
constexpr double kMissingRevenueEmpty = 0.045;
constexpr double kMissingRevenueNA = 0.008;  // written as "N/A"
constexpr double kMissingWebVisits = 0.060;
constexpr double kMissingEngagement = 0.065;
constexpr double kMissingFounded = 0.040;
constexpr double kMissingCountry = 0.040;

// Customers engage more and open more tickets than prospects (a realistic, mild leak of the
// label into the features).
constexpr double kCustomerEngagementLift = 0.3;  // on the logit scale
constexpr double kCustomerTicketFactor = 1.4;
constexpr double kProspectTicketFactor = 0.8;

// Company names: a few have an embedded quoted nickname (exercises RFC 4180 doubled quotes).
constexpr double kQuotedNameRate = 0.004;
constexpr double kLawFirmNameRate = 0.3;  // of Professional Services: "Smith, Jones & Partners"

constexpr std::size_t kFlushBytes = std::size_t{1} << 20;  // write in 1 MiB blocks

// clang-format off
const char* const kIndustries[] = {
    "Software", "E-commerce", "Fintech", "Healthcare", "Manufacturing", "Retail",
    "Professional Services", "Financial Services", "Education", "Logistics", "Media",
    "Telecommunications", "Energy", "Real Estate", "Construction", "Hospitality", "Biotech",
    "Automotive", "Insurance", "Government", "Non-profit", "Agriculture"};

const char* const kCountries[] = {
    "US", "GB", "DE", "FR", "CA", "IN", "AU", "NL", "JP", "BR", "ES", "IT", "SE", "SG", "CH", "IE",
    "IL", "PL", "MX", "DK", "NO", "BE", "AT", "FI", "NZ", "ZA"};

const char* const kStages[] = {
    "Bootstrapped", "Seed", "Series A", "Series B", "Series C+", "Public", "PE-backed"};
// clang-format on

struct Weighted {
  const char* name;
  double weight;
};

struct LogNormal {
  double median;
  double sigma;
};

struct SegmentSpec {
  const char* name;
  bool icp;
  double share;
  std::vector<Weighted> industries;
  std::vector<Weighted> countries;  ///< empty: the background mix
  std::vector<Weighted> stages;
  LogNormal employees;
  LogNormal revenue_per_employee;
  LogNormal age_years;
  LogNormal web_visits;  ///< at the segment's median size; scales with size^0.3
  LogNormal signups;
  double signup_zero;  ///< share of accounts with no product sign-ups at all
  double engagement_logit_mean;
  double engagement_logit_sigma;
  double tickets;  ///< mean support tickets per 90 days, before the customer factor
  double customer_rate;
  double churn_rate;  ///< among customers
  LogNormal acv;
};

std::vector<SegmentSpec> segment_specs() {
  std::vector<SegmentSpec> s;
  // Planted ICP 1: mid-market SaaS/Fintech in US/GB, 50-500 employees, strong product signals.
  s.push_back({"Mid-market SaaS & Fintech (US/GB)",
               true,
               0.055,
               {{"Software", 6}, {"Fintech", 3}, {"Professional Services", 0.4}, {"Media", 0.3}},
               {{"US", 6}, {"GB", 3}, {"CA", 0.5}, {"IE", 0.3}, {"NL", 0.2}},
               {{"Series A", 2},
                {"Series B", 3},
                {"Series C+", 2.5},
                {"PE-backed", 1},
                {"Bootstrapped", 0.7},
                {"Public", 0.3}},
               {160, 0.6},
               {180000, 0.45},
               {9, 0.5},
               {9000, 0.7},
               {60, 0.8},
               0.05,
               0.2,
               0.7,
               6,
               0.36,
               0.05,
               {42000, 0.6}});
  // Planted ICP 2: growth-stage e-commerce with high engagement.
  s.push_back(
      {"Growth-stage E-commerce",
       true,
       0.045,
       {{"E-commerce", 7}, {"Retail", 1.5}, {"Media", 0.5}, {"Hospitality", 0.3}},
       {{"US", 4},
        {"GB", 1.5},
        {"DE", 1.2},
        {"FR", 1},
        {"NL", 0.8},
        {"CA", 0.8},
        {"AU", 0.7},
        {"ES", 0.5},
        {"SE", 0.4}},
       {{"Seed", 1}, {"Series A", 3}, {"Series B", 3}, {"Series C+", 1.2}, {"Bootstrapped", 0.8}},
       {70, 0.7},
       {250000, 0.5},
       {6, 0.5},
       {15000, 0.8},
       {25, 0.9},
       0.10,
       0.8,
       0.6,
       5,
       0.34,
       0.07,
       {30000, 0.55}});
  s.push_back({"Local SMB services",
               false,
               0.20,
               {{"Professional Services", 4},
                {"Construction", 3},
                {"Retail", 2.5},
                {"Hospitality", 2.5},
                {"Real Estate", 1.5},
                {"Healthcare", 1},
                {"Agriculture", 0.5}},
               {},
               {{"Bootstrapped", 8}, {"Seed", 1}, {"PE-backed", 0.5}},
               {12, 0.9},
               {110000, 0.6},
               {15, 0.7},
               {500, 1.0},
               {1, 1.0},
               0.60,
               -1.3,
               0.8,
               1,
               0.012,
               0.30,
               {6000, 0.7}});
  s.push_back({"Enterprise manufacturing",
               false,
               0.10,
               {{"Manufacturing", 6},
                {"Automotive", 2},
                {"Energy", 1.5},
                {"Agriculture", 0.5},
                {"Logistics", 0.5}},
               {{"DE", 3},
                {"US", 3},
                {"JP", 2},
                {"FR", 1},
                {"IT", 1},
                {"SE", 0.6},
                {"CH", 0.5},
                {"PL", 0.5},
                {"MX", 0.5},
                {"BR", 0.5},
                {"IN", 0.5}},
               {{"Public", 4}, {"PE-backed", 3}, {"Bootstrapped", 1}},
               {2500, 1.0},
               {300000, 0.5},
               {45, 0.5},
               {4000, 0.9},
               {3, 1.0},
               0.35,
               -0.8,
               0.8,
               8,
               0.025,
               0.18,
               {35000, 0.8}});
  s.push_back({"Healthcare & life sciences",
               false,
               0.10,
               {{"Healthcare", 6}, {"Biotech", 2.5}, {"Insurance", 0.5}, {"Education", 0.3}},
               {{"US", 5},
                {"GB", 1},
                {"DE", 1},
                {"CH", 0.7},
                {"FR", 0.7},
                {"CA", 0.7},
                {"IN", 0.5},
                {"IL", 0.4}},
               {{"Bootstrapped", 2},
                {"PE-backed", 2},
                {"Public", 1.5},
                {"Series A", 1},
                {"Series B", 1},
                {"Seed", 0.5}},
               {300, 1.1},
               {150000, 0.5},
               {20, 0.8},
               {3000, 0.9},
               {4, 1.0},
               0.30,
               -0.5,
               0.8,
               4,
               0.02,
               0.20,
               {18000, 0.8}});
  // A confounder for ICP 1: software-heavy and digitally active, but tiny and high-churn.
  s.push_back({"Early-stage startups",
               false,
               0.14,
               {{"Software", 4},
                {"Fintech", 1.5},
                {"E-commerce", 1.2},
                {"Biotech", 0.8},
                {"Media", 0.8},
                {"Education", 0.5},
                {"Healthcare", 0.5}},
               {{"US", 4},
                {"GB", 1.2},
                {"IN", 1.2},
                {"DE", 0.8},
                {"FR", 0.6},
                {"CA", 0.6},
                {"SG", 0.5},
                {"IL", 0.5},
                {"BR", 0.4},
                {"SE", 0.3},
                {"NL", 0.3},
                {"ES", 0.3},
                {"AU", 0.3}},
               {{"Seed", 5}, {"Bootstrapped", 2}, {"Series A", 1.5}},
               {8, 0.8},
               {60000, 0.9},
               {2.5, 0.6},
               {2500, 1.0},
               {10, 1.1},
               0.20,
               0.0,
               0.9,
               2,
               0.03,
               0.35,
               {8000, 0.7}});
  // A confounder for ICP 2: retail with heavy web traffic but little product usage.
  s.push_back({"Retail & consumer chains",
               false,
               0.10,
               {{"Retail", 5},
                {"Hospitality", 1.5},
                {"E-commerce", 0.8},
                {"Real Estate", 0.5},
                {"Logistics", 0.5}},
               {{"US", 3},
                {"GB", 1},
                {"DE", 1},
                {"FR", 1},
                {"CA", 0.6},
                {"AU", 0.5},
                {"JP", 0.5},
                {"ES", 0.5},
                {"IT", 0.5},
                {"MX", 0.4},
                {"BR", 0.4}},
               {{"PE-backed", 3}, {"Public", 2}, {"Bootstrapped", 2}},
               {600, 1.0},
               {200000, 0.5},
               {30, 0.6},
               {20000, 1.0},
               {2, 1.0},
               0.40,
               -0.3,
               0.8,
               5,
               0.02,
               0.22,
               {22000, 0.7}});
  // Few customers but large contracts: some pass the seed rule's ACV threshold.
  s.push_back({"Financial services incumbents",
               false,
               0.08,
               {{"Financial Services", 5}, {"Insurance", 3}, {"Real Estate", 1}, {"Fintech", 0.5}},
               {{"US", 3},
                {"GB", 2},
                {"CH", 1},
                {"DE", 1},
                {"FR", 0.7},
                {"CA", 0.7},
                {"SG", 0.5},
                {"JP", 0.5},
                {"NL", 0.4},
                {"IE", 0.3},
                {"AU", 0.4}},
               {{"Public", 4}, {"PE-backed", 2}, {"Bootstrapped", 1}},
               {1500, 1.1},
               {400000, 0.5},
               {50, 0.6},
               {6000, 0.9},
               {2, 1.0},
               0.45,
               -0.9,
               0.7,
               7,
               0.018,
               0.15,
               {45000, 0.8}});
  s.push_back({"Public sector & education",
               false,
               0.08,
               {{"Education", 5}, {"Government", 3}, {"Non-profit", 2.5}, {"Healthcare", 0.3}},
               {{"US", 3},
                {"GB", 1},
                {"CA", 0.8},
                {"AU", 0.6},
                {"DE", 0.6},
                {"FR", 0.6},
                {"NL", 0.4},
                {"SE", 0.3},
                {"NO", 0.3},
                {"DK", 0.3},
                {"FI", 0.2},
                {"NZ", 0.2},
                {"IE", 0.2}},
               {{"Bootstrapped", 6}, {"PE-backed", 0.3}},
               {400, 1.2},
               {80000, 0.6},
               {60, 0.7},
               {8000, 1.0},
               {1, 1.0},
               0.60,
               -1.0,
               0.8,
               3,
               0.01,
               0.25,
               {10000, 0.7}});
  s.push_back({"Logistics & telecom operators",
               false,
               0.10,
               {{"Logistics", 5},
                {"Telecommunications", 2.5},
                {"Energy", 1.5},
                {"Automotive", 0.5},
                {"Construction", 0.5},
                {"Media", 0.5}},
               {},
               {{"PE-backed", 3}, {"Public", 2}, {"Bootstrapped", 2}, {"Series C+", 0.5}},
               {900, 1.1},
               {250000, 0.6},
               {28, 0.7},
               {2500, 1.0},
               {2, 1.0},
               0.45,
               -0.7,
               0.8,
               6,
               0.02,
               0.20,
               {20000, 0.8}});
  return s;
}

// clang-format off
// Background (population-wide) mixes, long-tailed.
const std::vector<Weighted> kBackgroundIndustries = {
    {"Software", 12}, {"Retail", 10}, {"Professional Services", 10}, {"Manufacturing", 9},
    {"Healthcare", 8}, {"Construction", 7}, {"Financial Services", 6}, {"E-commerce", 5},
    {"Hospitality", 5}, {"Education", 4}, {"Logistics", 4}, {"Real Estate", 4}, {"Media", 3},
    {"Fintech", 3}, {"Insurance", 2.5}, {"Energy", 2}, {"Telecommunications", 1.5},
    {"Automotive", 1.5}, {"Biotech", 1.2}, {"Agriculture", 1}, {"Government", 0.8},
    {"Non-profit", 0.8}};

const std::vector<Weighted> kBackgroundCountries = {
    {"US", 30}, {"GB", 9}, {"DE", 8}, {"FR", 6}, {"CA", 5}, {"IN", 5}, {"AU", 4}, {"NL", 3},
    {"JP", 3}, {"BR", 3}, {"ES", 2.5}, {"IT", 2.5}, {"SE", 2}, {"SG", 1.5}, {"CH", 1.5},
    {"IE", 1.2}, {"IL", 1.2}, {"PL", 1.2}, {"MX", 1.2}, {"DK", 0.8}, {"NO", 0.7}, {"BE", 0.7},
    {"AT", 0.6}, {"FI", 0.5}, {"NZ", 0.4}, {"ZA", 0.4}};

const std::vector<Weighted> kBackgroundStages = {
    {"Bootstrapped", 40}, {"Seed", 15}, {"Series A", 10}, {"Series B", 7}, {"Series C+", 4},
    {"Public", 8}, {"PE-backed", 16}};

const char* const kNameFirst[] = {
    "Acme", "Northwind", "Blue", "Summit", "Apex", "Bright", "Cedar", "Delta", "Evergreen",
    "Falcon", "Granite", "Harbor", "Iron", "Juniper", "Keystone", "Lumen", "Maple", "Nova", "Oak",
    "Pinnacle", "Quantum", "River", "Silver", "Terra", "Union", "Vertex", "Willow", "Zenith",
    "Atlas", "Beacon", "Cobalt", "Crescent", "Echo", "Fusion", "Golden", "Horizon", "Insight",
    "Kinetic", "Lighthouse", "Meridian", "Nimbus", "Orbit", "Polar", "Redwood", "Sierra", "Stellar",
    "Titan", "Vista", "Aurora", "Bluebird", "Cascade", "Elm", "Frontier", "Helix", "Ivy", "Lotus",
    "Mosaic", "Onyx", "Prism", "Sapphire"};

const char* const kNameSecond[] = {
    "Analytics", "Labs", "Systems", "Solutions", "Technologies", "Industries", "Partners", "Group",
    "Holdings", "Logistics", "Health", "Foods", "Retail", "Capital", "Networks", "Energy", "Media",
    "Works", "Dynamics", "Ventures", "Digital", "Software", "Consulting", "Manufacturing", "Supply",
    "Brands", "Studios", "Bio", "Motors", "Financial", "Interactive", "Robotics", "Services",
    "Design", "Data", "Cloud", "Commerce", "Learning", "Care", "Markets"};

const char* const kSurnames[] = {
    "Smith", "Jones", "Miller", "Brown", "Garcia", "Wilson", "Taylor", "Clarke", "Walker", "Wright",
    "Khan", "Meyer", "Dubois", "Rossi", "Novak", "Sato", "Patel", "Larsen"};
// clang-format on

/// Legal-form suffixes by country; ", Inc." and ", LLC" put a comma inside the name.
std::vector<Weighted> legal_suffixes(std::string_view country) {
  if (country == "US" || country == "CA")
    return {{", Inc.", 3}, {" Inc.", 2}, {" LLC", 2}, {", LLC", 1}, {" Corp.", 1}, {"", 1}};
  if (country == "GB" || country == "IE")
    return {{" Ltd", 4}, {" Limited", 1}, {" plc", 0.5}, {"", 1}};
  if (country == "DE" || country == "AT" || country == "CH")
    return {{" GmbH", 4}, {" AG", 1}, {"", 0.5}};
  if (country == "FR" || country == "BE") return {{" SAS", 2}, {" SA", 1}, {"", 1}};
  if (country == "NL") return {{" B.V.", 3}, {"", 1}};
  if (country == "SE") return {{" AB", 3}, {"", 1}};
  if (country == "NO") return {{" AS", 3}, {"", 1}};
  if (country == "DK") return {{" A/S", 3}, {"", 1}};
  if (country == "FI") return {{" Oy", 3}, {"", 1}};
  if (country == "AU" || country == "NZ") return {{" Pty Ltd", 3}, {"", 1}};
  if (country == "JP") return {{" K.K.", 2}, {" Co., Ltd.", 2}, {"", 1}};
  if (country == "IN") return {{" Pvt. Ltd.", 3}, {"", 1}};
  if (country == "BR") return {{" Ltda.", 3}, {"", 1}};
  if (country == "ES") return {{" S.L.", 2}, {" S.A.", 1}, {"", 1}};
  if (country == "MX") return {{" S.A. de C.V.", 3}, {"", 1}};
  if (country == "IT") return {{" S.r.l.", 2}, {" S.p.A.", 1}, {"", 1}};
  return {{" Ltd", 2}, {"", 1}};
}

/// Draws an index into a fixed list by weight (lists are short: a linear scan is fastest).
class Discrete {
 public:
  Discrete() = default;
  Discrete(const std::vector<Weighted>& items, const char* const* names, std::size_t name_count) {
    double total = 0.0;
    for (const auto& item : items) {
      const auto* found = std::find_if(names, names + name_count, [&](const char* n) {
        return std::string_view(n) == item.name;
      });
      if (found == names + name_count || item.weight <= 0.0)
        throw std::logic_error(std::string("generate: bad planted value '") + item.name + "'");
      total += item.weight;
      index_.push_back(static_cast<int>(found - names));
      cumulative_.push_back(total);
    }
    for (auto& c : cumulative_) c /= total;
  }
  explicit Discrete(const std::vector<Weighted>& items) {
    double total = 0.0;
    for (std::size_t i = 0; i < items.size(); ++i) {
      total += items[i].weight;
      index_.push_back(static_cast<int>(i));
      cumulative_.push_back(total);
    }
    for (auto& c : cumulative_) c /= total;
  }

  bool empty() const noexcept { return index_.empty(); }

  int operator()(Rng& rng) const noexcept {
    const double u = rng.uniform();
    for (std::size_t i = 0; i + 1 < cumulative_.size(); ++i)
      if (u < cumulative_[i]) return index_[i];
    return index_.back();  // also absorbs rounding in the last cumulative weight
  }

 private:
  std::vector<int> index_;
  std::vector<double> cumulative_;
};

struct Segment {
  SegmentSpec spec;
  Discrete industry;
  Discrete country;
  Discrete stage;
};

struct Model {
  std::vector<Segment> segments;
  Discrete segment;
  Discrete industry;
  Discrete country;
  Discrete stage;

  Model() {
    constexpr std::size_t kNI = std::size(kIndustries);
    constexpr std::size_t kNC = std::size(kCountries);
    constexpr std::size_t kNS = std::size(kStages);
    std::vector<Weighted> shares;
    for (auto& spec : segment_specs()) {
      shares.push_back({spec.name, spec.share});
      Segment seg;
      seg.industry = Discrete(spec.industries, kIndustries, kNI);
      if (!spec.countries.empty()) seg.country = Discrete(spec.countries, kCountries, kNC);
      seg.stage = Discrete(spec.stages, kStages, kNS);
      seg.spec = std::move(spec);
      segments.push_back(std::move(seg));
    }
    segment = Discrete(shares);
    industry = Discrete(kBackgroundIndustries, kIndustries, kNI);
    country = Discrete(kBackgroundCountries, kCountries, kNC);
    stage = Discrete(kBackgroundStages, kStages, kNS);
  }
};

const Model& model() {
  static const Model m;
  return m;
}

double lognormal(Rng& rng, const LogNormal& d) noexcept {
  return d.median * std::exp(d.sigma * rng.normal());
}

template <std::size_t N>
const char* pick(Rng& rng, const char* const (&list)[N]) noexcept {
  auto i = static_cast<std::size_t>(rng.uniform() * static_cast<double>(N));
  return list[std::min(i, N - 1)];
}

const char* pick_weighted(Rng& rng, const std::vector<Weighted>& items) noexcept {
  double total = 0.0;
  for (const auto& item : items) total += item.weight;
  double u = rng.uniform() * total;
  for (const auto& item : items) {
    if (u < item.weight) return item.name;
    u -= item.weight;
  }
  return items.back().name;
}

std::string company_name(Rng& rng, int industry, const char* country) {
  std::string name;
  if (std::string_view(kIndustries[industry]) == "Professional Services" &&
      rng.bernoulli(kLawFirmNameRate)) {
    name = std::string(pick(rng, kSurnames)) + ", " + pick(rng, kSurnames) + " & Partners";
  } else {
    name = pick(rng, kNameFirst);
    if (rng.bernoulli(kQuotedNameRate)) name += std::string(" \"") + pick(rng, kNameFirst) + "\"";
    name += ' ';
    name += pick(rng, kNameSecond);
  }
  name += pick_weighted(rng, legal_suffixes(country));
  return name;
}

/// RFC 4180: quote a field holding the delimiter, a quote or a line break; double inner quotes.
void append_field(fmt::memory_buffer& out, std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(field);
    return;
  }
  out.push_back('"');
  for (char c : field) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

std::string io_error(const std::string& what, const std::string& path) {
  return "generate: cannot " + what + " '" + path + "': " + std::strerror(errno);
}

/// An output written under `<path>.tmp` and renamed onto `path` only by commit(); otherwise the
/// temporary is removed, so a failed run never leaves a truncated file under the real name.
class OutputFile {
 public:
  explicit OutputFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
    file_ = std::fopen(tmp_.c_str(), "wb");
    if (file_ == nullptr) throw Error(io_error("open for writing", path_));
  }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile() {
    if (file_ != nullptr) std::fclose(file_);
    if (!committed_) std::remove(tmp_.c_str());
  }

  fmt::memory_buffer& buffer() noexcept { return buffer_; }

  void maybe_flush() {
    if (buffer_.size() >= kFlushBytes) flush();
  }

  void flush() {
    if (buffer_.size() == 0) return;
    if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size())
      throw Error(io_error("write", path_));
    bytes_ += static_cast<std::int64_t>(buffer_.size());
    buffer_.clear();
  }

  /// Flushes and closes the temporary (every write error surfaces here, before any rename).
  void close() {
    flush();
    std::FILE* f = std::exchange(file_, nullptr);
    if (std::fclose(f) != 0) throw Error(io_error("write", path_));
  }

  void commit() {
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) throw Error(io_error("rename onto", path_));
    committed_ = true;
  }

  std::int64_t bytes() const noexcept { return bytes_; }

 private:
  std::string path_;
  std::string tmp_;
  std::FILE* file_ = nullptr;
  fmt::memory_buffer buffer_;
  std::int64_t bytes_ = 0;
  bool committed_ = false;
};

}  // namespace

int generate_segment_count() noexcept {
  return static_cast<int>(model().segments.size());
}

std::string generate_segment_name(int segment) {
  if (segment < 0 || segment >= generate_segment_count())
    throw Error("generate: no planted segment " + std::to_string(segment));
  return model().segments[static_cast<std::size_t>(segment)].spec.name;
}

bool generate_segment_is_icp(int segment) {
  if (segment < 0 || segment >= generate_segment_count())
    throw Error("generate: no planted segment " + std::to_string(segment));
  return model().segments[static_cast<std::size_t>(segment)].spec.icp;
}

GenerateStats generate_accounts(const GenerateOptions& options, const std::string& csv_path,
                                const std::string& truth_path) {
  const auto start = std::chrono::steady_clock::now();
  if (options.rows < 0)
    throw Error("generate: rows must be >= 0, got " + std::to_string(options.rows));
  if (csv_path.empty()) throw Error("generate: no output path");
  if (csv_path == truth_path)
    throw Error("generate: accounts and truth would both be written to '" + csv_path + "'");

  const Model& m = model();
  GenerateStats stats;
  stats.segment_rows.assign(m.segments.size(), 0);

  OutputFile csv(csv_path);
  std::unique_ptr<OutputFile> truth;
  if (!truth_path.empty()) truth = std::make_unique<OutputFile>(truth_path);

  fmt::memory_buffer& out = csv.buffer();
  out.append(std::string_view(
      "account_id,company_name,industry,country,funding_stage,employees,annual_revenue,"
      "founded_year,web_visits_30d,product_signups_90d,email_engagement,support_tickets_90d,"
      "is_customer,acv,churned\n"));
  if (truth) truth->buffer().append(std::string_view("account_id,segment,segment_name,is_icp\n"));

  for (std::int64_t row = 0; row < options.rows; ++row) {
    Rng rng(options.seed, static_cast<std::uint64_t>(row));
    const int seg_id = m.segment(rng);
    const Segment& seg = m.segments[static_cast<std::size_t>(seg_id)];
    const SegmentSpec& spec = seg.spec;

    const int industry = rng.bernoulli(kIndustryNoise) ? m.industry(rng) : seg.industry(rng);
    const bool country_bg = seg.country.empty() || rng.bernoulli(kCountryNoise);
    const int country = country_bg ? m.country(rng) : seg.country(rng);
    const int stage = rng.bernoulli(kStageNoise) ? m.stage(rng) : seg.stage(rng);

    const double employees_raw = lognormal(rng, spec.employees);
    const std::int64_t employees =
        std::clamp<std::int64_t>(std::llround(employees_raw), 1, kMaxEmployees);
    // Revenue follows headcount (revenue per employee varies by segment), hence the correlation.
    const double revenue_raw =
        static_cast<double>(employees) * lognormal(rng, spec.revenue_per_employee);
    const std::int64_t revenue =
        std::max<std::int64_t>(1000, std::llround(revenue_raw / 1000.0) * 1000);
    const auto age = static_cast<int>(std::floor(lognormal(rng, spec.age_years)));
    const int founded = std::clamp(kReferenceYear - age, kOldestYear, kReferenceYear);
    const double size_factor =
        std::pow(static_cast<double>(employees) / spec.employees.median, 0.3);
    const std::int64_t web = std::llround(lognormal(rng, spec.web_visits) * size_factor);
    const bool no_signups = rng.bernoulli(spec.signup_zero);
    const double signups_raw = lognormal(rng, spec.signups);
    const std::int64_t signups = no_signups ? 0 : std::llround(signups_raw);

    const bool customer = rng.bernoulli(spec.customer_rate);
    const bool churned = rng.bernoulli(spec.churn_rate) && customer;
    const double acv_raw = lognormal(rng, spec.acv);
    const std::int64_t acv = std::max<std::int64_t>(1000, std::llround(acv_raw / 100.0) * 100);
    const double logit = spec.engagement_logit_mean + spec.engagement_logit_sigma * rng.normal() +
                         (customer ? kCustomerEngagementLift : 0.0);
    const double engagement = 1.0 / (1.0 + std::exp(-logit));
    const std::int64_t tickets =
        rng.poisson(spec.tickets * (customer ? kCustomerTicketFactor : kProspectTicketFactor));

    const std::string name = company_name(rng, industry, kCountries[country]);

    // Missingness last, with a fixed number of draws, so it never shifts the values above.
    const bool miss_employees = rng.bernoulli(kMissingEmployees);
    const double u_revenue = rng.uniform();
    const bool miss_web = rng.bernoulli(kMissingWebVisits);
    const bool miss_engagement = rng.bernoulli(kMissingEngagement);
    const bool miss_founded = rng.bernoulli(kMissingFounded);
    const bool miss_country = rng.bernoulli(kMissingCountry);

    auto it = std::back_inserter(out);
    fmt::format_to(it, "A{:07d},", row + 1);
    append_field(out, name);
    fmt::format_to(it, ",{},{},{},", kIndustries[industry], miss_country ? "" : kCountries[country],
                   kStages[stage]);
    if (!miss_employees) fmt::format_to(it, "{}", employees);
    out.push_back(',');
    if (u_revenue < kMissingRevenueNA) {
      out.append(std::string_view("N/A"));
    } else if (u_revenue >= kMissingRevenueNA + kMissingRevenueEmpty) {
      fmt::format_to(it, "{}", revenue);
    }
    out.push_back(',');
    if (!miss_founded) fmt::format_to(it, "{}", founded);
    out.push_back(',');
    if (!miss_web) fmt::format_to(it, "{}", web);
    fmt::format_to(it, ",{},", signups);
    if (!miss_engagement) fmt::format_to(it, "{:.3f}", engagement);
    fmt::format_to(it, ",{},{:d},", tickets, customer ? 1 : 0);
    // A prospect has no contract: its ACV is missing rather than 0, so per-segment value
    // statistics describe paying customers only.
    if (customer) fmt::format_to(it, "{}", acv);
    fmt::format_to(it, ",{:d}\n", churned ? 1 : 0);
    csv.maybe_flush();

    if (truth) {
      fmt::format_to(std::back_inserter(truth->buffer()), "A{:07d},{},", row + 1, seg_id);
      append_field(truth->buffer(), spec.name);
      fmt::format_to(std::back_inserter(truth->buffer()), ",{:d}\n", spec.icp ? 1 : 0);
      truth->maybe_flush();
    }

    ++stats.segment_rows[static_cast<std::size_t>(seg_id)];
    if (spec.icp) ++stats.icp_rows;
    if (customer) ++stats.customers;
    if (customer && spec.icp) ++stats.icp_customers;
    if (churned) ++stats.churned;
  }

  csv.close();
  if (truth) truth->close();
  csv.commit();
  if (truth) truth->commit();

  stats.rows = options.rows;
  stats.bytes = csv.bytes();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace icp
