package notify

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func envOf(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := kv[k]
		return v, ok
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(envOf(nil))
	require.NoError(t, err)
	require.Equal(t, Config{From: DefaultEmailFrom, WebAppURL: DefaultWebAppURL, AlertOn: AlertAll}, cfg)
	require.Nil(t, cfg.SMTP, "no SMTP means the log transport")

	cfg, err = LoadConfig(envOf(map[string]string{"SMTP_HOST": "", "SYSTEM_JOBS_ALERT_EMAIL": " , "}))
	require.NoError(t, err)
	require.Nil(t, cfg.SMTP, "empty values count as unset")
	require.Empty(t, cfg.AlertEmails)
}

func TestLoadConfigValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want func(t *testing.T, c Config)
	}{
		{
			name: "smtp URL with STARTTLS",
			env:  map[string]string{"SMTP_URL": "smtp://mailer:p%40ss%3Aw0rd@mail.example.com:2525?starttls=opportunistic"},
			want: func(t *testing.T, c Config) {
				require.Equal(t, &SMTPConfig{Host: "mail.example.com", Port: 2525, Username: "mailer", Password: "p@ss:w0rd",
					TLS: TLSOpportunistic, Timeout: 30 * time.Second}, c.SMTP)
			},
		},
		{
			name: "smtp URL defaults",
			env:  map[string]string{"SMTP_URL": "smtp://relay.internal", "SMTP_TIMEOUT": "45s"},
			want: func(t *testing.T, c Config) {
				require.Equal(t, &SMTPConfig{Host: "relay.internal", Port: 587, TLS: TLSStartTLS, Timeout: 45 * time.Second}, c.SMTP)
			},
		},
		{
			name: "smtps URL",
			env:  map[string]string{"SMTP_URL": "smtps://u:p@smtp.example.com"},
			want: func(t *testing.T, c Config) {
				require.Equal(t, TLSImplicit, c.SMTP.TLS)
				require.Equal(t, 465, c.SMTP.Port)
			},
		},
		{
			name: "no STARTTLS for a local relay",
			env:  map[string]string{"SMTP_URL": "smtp://127.0.0.1:25/?starttls=none"},
			want: func(t *testing.T, c Config) { require.Equal(t, TLSNone, c.SMTP.TLS) },
		},
		{
			name: "discrete variables",
			env: map[string]string{"SMTP_HOST": "smtp.example.com", "SMTP_PORT": "2587", "SMTP_USERNAME": "u",
				"SMTP_PASSWORD": "pw ", "SMTP_TLS": "none", "SMTP_TIMEOUT": "1m30s"},
			want: func(t *testing.T, c Config) {
				require.Equal(t, &SMTPConfig{Host: "smtp.example.com", Port: 2587, Username: "u", Password: "pw ",
					TLS: TLSNone, Timeout: 90 * time.Second}, c.SMTP)
			},
		},
		{
			name: "implicit TLS picks port 465",
			env:  map[string]string{"SMTP_HOST": "smtp.example.com", "SMTP_TLS": "tls"},
			want: func(t *testing.T, c Config) { require.Equal(t, 465, c.SMTP.Port) },
		},
		{
			name: "alerts and links",
			env: map[string]string{"SYSTEM_JOBS_ALERT_EMAIL": "ops@example.com, Night Shift <night@example.com>,",
				"SYSTEM_JOBS_ALERT_ON": "failures", "EMAIL_FROM": "Owlmetry <alerts@example.com>",
				"WEB_APP_URL": "https://owl.example.com/"},
			want: func(t *testing.T, c Config) {
				require.Equal(t, []string{"ops@example.com", "Night Shift <night@example.com>"}, c.AlertEmails)
				require.Equal(t, AlertFailures, c.AlertOn)
				require.Equal(t, "Owlmetry <alerts@example.com>", c.From)
				require.Equal(t, "https://owl.example.com", c.WebAppURL)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := LoadConfig(envOf(tt.env))
			require.NoError(t, err)
			tt.want(t, c)
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	t.Parallel()
	const secret = "Hunter2-secret"
	tests := []struct {
		env      map[string]string
		variable string
		detail   string
	}{
		{map[string]string{"SMTP_URL": "http://u:" + secret + "@mail.example.com"}, "SMTP_URL", `unsupported scheme "http"`},
		{map[string]string{"SMTP_URL": "mail.example.com:25"}, "SMTP_URL", "scheme"},
		{map[string]string{"SMTP_URL": "smtp://u:" + secret + "@mail.example.com:port"}, "SMTP_URL", "invalid port"},
		{map[string]string{"SMTP_URL": "smtp://u:" + secret + "@mail.example.com:70000"}, "SMTP_URL", "invalid port"},
		{map[string]string{"SMTP_URL": "smtp://u:" + secret + "%zz@mail.example.com"}, "SMTP_URL", "not a URL"},
		{map[string]string{"SMTP_URL": "smtp://u:" + secret + "@"}, "SMTP_URL", "missing host"},
		{map[string]string{"SMTP_URL": "smtp://u:" + secret + "@mail.example.com/x"}, "SMTP_URL", "unexpected path"},
		{map[string]string{"SMTP_URL": "smtp://mail.example.com?starttls=always"}, "SMTP_URL", `invalid starttls "always"`},
		{map[string]string{"SMTP_URL": "smtp://mail.example.com?tls=1"}, "SMTP_URL", `unknown parameter "tls"`},
		{map[string]string{"SMTP_URL": "smtps://mail.example.com?starttls=none"}, "SMTP_URL", "does not apply to smtps"},
		{map[string]string{"SMTP_URL": "smtp://a.example.com", "SMTP_HOST": "b.example.com"}, "SMTP_URL", "SMTP_HOST is set too"},
		{map[string]string{"SMTP_HOST": "smtp://mail.example.com"}, "SMTP_HOST", "without scheme"},
		{map[string]string{"SMTP_PORT": "0"}, "SMTP_PORT", "1 to 65535"},
		{map[string]string{"SMTP_HOST": "h", "SMTP_PORT": "twenty-five"}, "SMTP_PORT", "1 to 65535"},
		{map[string]string{"SMTP_TLS": "ssl"}, "SMTP_TLS", "starttls, opportunistic, tls or none"},
		{map[string]string{"SMTP_TIMEOUT": "30"}, "SMTP_TIMEOUT", "positive Go duration"},
		{map[string]string{"SMTP_TIMEOUT": "-5s"}, "SMTP_TIMEOUT", "positive Go duration"},
		{map[string]string{"SYSTEM_JOBS_ALERT_ON": "errors"}, "SYSTEM_JOBS_ALERT_ON", "all or failures"},
		{map[string]string{"SYSTEM_JOBS_ALERT_EMAIL": "ops@example.com, not an address"}, "SYSTEM_JOBS_ALERT_EMAIL", `"not an address"`},
		{map[string]string{"EMAIL_FROM": "owlmetry"}, "EMAIL_FROM", "owlmetry"},
		{map[string]string{"WEB_APP_URL": "owl.example.com"}, "WEB_APP_URL", "absolute http or https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.variable+" "+tt.detail, func(t *testing.T) {
			t.Parallel()
			_, err := LoadConfig(envOf(tt.env))
			require.Error(t, err)
			msg := err.Error()
			require.True(t, strings.HasPrefix(msg, "invalid "+tt.variable), msg)
			require.Contains(t, msg, tt.detail)
			require.NotContains(t, msg, "\n", "one line")
			require.NotContains(t, msg, secret, "never the password")
		})
	}
}

func TestConfigNeverPrintsThePassword(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(envOf(map[string]string{"SMTP_URL": "smtp://mailer:Hunter2-secret@mail.example.com"}))
	require.NoError(t, err)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "email", cfg, "smtp", cfg.SMTP)
	require.NotContains(t, buf.String(), "Hunter2")
	require.Contains(t, buf.String(), `"password_set":true`)
	require.NotContains(t, cfg.SMTP.String(), "Hunter2")
	require.NotContains(t, fmt.Sprint(*cfg.SMTP), "Hunter2")
	require.Contains(t, cfg.SMTP.String(), "mailer:***@mail.example.com:587")
}
