/* placeholder until written */ typedef int kcps_placeholder_t;
