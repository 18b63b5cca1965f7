package adgate.bench;

import org.apache.camel.component.platform.http.vertx.VertxPlatformHttpServer;
import org.apache.camel.component.platform.http.vertx.VertxPlatformHttpServerConfiguration;
import org.apache.camel.main.BaseMainSupport;
import org.apache.camel.main.Main;
import org.apache.camel.main.MainListenerSupport;

/**
 * Starts Camel Main with the YAML route given as camel.main.routesIncludePattern, plus the
 * Vert.x HTTP server that camel-platform-http-main would start (that artifact is not served
 * here). Port and host from PORT and HOST.
 */
public final class CamelPeer {
    public static void main(String[] args) throws Exception {
        Main main = new Main();
        main.addMainListener(new MainListenerSupport() {
            @Override
            public void afterConfigure(BaseMainSupport m) {
                VertxPlatformHttpServerConfiguration config = new VertxPlatformHttpServerConfiguration();
                config.setBindHost(System.getenv().getOrDefault("HOST", "127.0.0.1"));
                config.setBindPort(Integer.parseInt(System.getenv("PORT")));
                try {
                    m.getCamelContext().addService(new VertxPlatformHttpServer(config));
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
        });
        main.run(args);
    }
}
