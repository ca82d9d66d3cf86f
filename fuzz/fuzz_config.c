/*
 * fuzz_config.c - libFuzzer target: the config loader on any bytes, and its
 * dump-and-reload round trip. Whatever loads must dump to YAML that loads
 * back to the same values (a string holding " or \ once broke resume).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sg_config a, b;
    static char err[1024], dump[16384];
    if (cfg_load_text(&a, "fuzz.yaml", (const char *)data, size, err, sizeof err) != 0 ||
        cfg_check(&a, err, sizeof err) != 0)     /* what the tool would go on with */
        return 0;
    size_t len = cfg_dump(&a, dump, sizeof dump);
    if (len >= sizeof dump - 1)                  /* a truncated dump is refused by the tool, never loaded */
        return 0;
    if (cfg_load_text(&b, "dump.yaml", dump, len, err, sizeof err) != 0) {
        fprintf(stderr, "the dump does not load back: %s\n%s", err, dump);
        abort();
    }
    for (int i = 0; i < cfg_schema_len; i++)
        if (strcmp(a.v[i].value, b.v[i].value) != 0) {
            fprintf(stderr, "%s: \"%s\" dumped and read back as \"%s\"\n", cfg_schema[i].key, a.v[i].value,
                    b.v[i].value);
            abort();
        }
    return 0;
}
