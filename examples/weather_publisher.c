/* Weather publisher: the ZeroMQ guide's wuserver, with liberzmq.
 *
 * Binds a publisher and sends one reading per city on the topics
 * "weather.beijing" and "weather.shanghai", as JSON values
 * {"city", "temperature", "humidity", "seq"}. Subscribers choose cities by
 * topic prefix (see weather_subscriber.c).
 *
 *   usage: weather_publisher [endpoint] [rounds] [interval_ms]
 *          endpoint     default tcp://127.0.0.1:5556
 *          rounds       readings per city, 0 = until Ctrl-C (default 0)
 *          interval_ms  pause between rounds (default 100)
 *          an empty argument ("") takes the default
 */
#define _POSIX_C_SOURCE 200809L

#include <liberzmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "args.h"

typedef struct city {
    const char *name;
    const char *topic;
    double temperature; // drifts a little at every reading
} city_t;

static volatile sig_atomic_t interrupted = 0;

static void on_signal(int signo) {
    (void)signo;
    interrupted = 1;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); // a signal cuts it short, which is what we want
}

// reading builds {"city", "temperature", "humidity", "seq"}; NULL on ENOMEM.
static lz_value_t *reading(const city_t *city, int humidity, long seq) {
    lz_value_t *v = lz_value_object();
    if (v && lz_value_object_set_string(v, "city", city->name) == LZ_OK &&
        lz_value_object_set_double(v, "temperature", city->temperature) == LZ_OK &&
        lz_value_object_set_int(v, "humidity", humidity) == LZ_OK &&
        lz_value_object_set_int(v, "seq", seq) == LZ_OK)
        return v;
    lz_value_destroy(&v);
    return NULL;
}

int main(int argc, char **argv) {
    const char *endpoint = argc > 1 && *argv[1] ? argv[1] : "tcp://127.0.0.1:5556";
    long rounds = argc > 2 ? arg_integer("weather_publisher", "rounds", argv[2], 0, LONG_MAX) : 0;
    long interval_ms = argc > 3 ? arg_integer("weather_publisher", "interval_ms", argv[3], 0, LONG_MAX) : 100;

    // Ctrl-C ends the loop; we still close everything properly.
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int status = EXIT_FAILURE;
    lz_pub_t *pub = NULL;
    // NULL config: defaults, then LIBERZMQ_CONFIG and LIBERZMQ_* variables.
    lz_context_t *ctx = lz_context_new(NULL);
    if (!ctx) {
        fprintf(stderr, "context: %s\n", lz_last_error());
        return EXIT_FAILURE;
    }
    // A publisher binds by default: subscribers come and go, it stays.
    pub = lz_pub_new(ctx, endpoint);
    if (!pub) {
        fprintf(stderr, "publisher on %s: %s\n", endpoint, lz_last_error());
        goto done;
    }
    printf("publishing weather on %s (Ctrl-C to stop)\n", lz_node_endpoint(lz_pub_node(pub)));

    city_t cities[] = {
        {"Beijing", "weather.beijing", 12.0},
        {"Shanghai", "weather.shanghai", 18.0},
    };
    srand((unsigned)time(NULL) ^ (unsigned)getpid());

    for (long seq = 1; !interrupted && (rounds == 0 || seq <= rounds); seq++) {
        for (size_t i = 0; i < sizeof cities / sizeof cities[0]; i++) {
            city_t *city = &cities[i];
            city->temperature += (rand() % 11 - 5) / 10.0; // +-0.5 degrees
            int humidity = 30 + rand() % 60;
            lz_value_t *value = reading(city, humidity, seq);
            if (!value) {
                fprintf(stderr, "out of memory\n");
                goto done;
            }
            int rc = lz_pub_publish(pub, city->topic, value);
            lz_value_destroy(&value);
            // Publishing to nobody is not an error (PUB/SUB drops it); a
            // full queue of a slow subscriber is (LZ_EAGAIN): report it and
            // go on, the metrics count it.
            if (rc != LZ_OK) {
                fprintf(stderr, "publish %s: %s (%s)\n", city->topic, lz_strerror(rc), lz_last_error());
                if (rc != LZ_EAGAIN) goto done;
                continue;
            }
            printf("%-17s #%-4ld %5.1f °C  %2d %% humidity\n", city->topic, seq, city->temperature, humidity);
        }
        fflush(stdout);
        if (rounds == 0 || seq < rounds) sleep_ms(interval_ms);
    }
    status = EXIT_SUCCESS;

    lz_metrics_t m;
    char json[1024];
    if (lz_node_metrics(lz_pub_node(pub), &m) == LZ_OK && lz_metrics_to_json(&m, json, sizeof json) > 0)
        printf("publisher metrics: %s\n", json);

done:
    // Destroying waits at most zmq.linger for queued messages to leave.
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
    return status;
}
