// simdjson's amalgamated implementation, from the @nozbe/simdjson package (Apache-2.0), compiled
// into the addon rather than copied into the repository.
#include "simdjson.cpp"
