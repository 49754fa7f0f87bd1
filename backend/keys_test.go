package backend

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/socks-dev/socks/config"
)

func TestTheGatewayKeysAreAnAWSCredentialsFile(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(k, "") // only the file may supply credentials
	}
	path := filepath.Join(t.TempDir(), "state", config.ManagementKeysFile)
	creds, err := EnsureManagementKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the key file: %v, %v; want mode 0600", fi, err)
	}
	again, err := EnsureManagementKeys(path)
	if err != nil || again.AccessKeyID != creds.AccessKeyID || again.SecretAccessKey != creds.SecretAccessKey {
		t.Fatalf("a second EnsureManagementKeys gave another pair (%v)", err)
	}
	// What the AWS CLI, boto3 and the SDKs read with
	// AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE.
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(),
		awsconfig.WithSharedConfigFiles([]string{}),
		awsconfig.WithSharedCredentialsFiles([]string{path}),
		awsconfig.WithSharedConfigProfile(config.ManagementProfile),
		awsconfig.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || got.AccessKeyID != creds.AccessKeyID || got.SecretAccessKey != creds.SecretAccessKey {
		t.Fatalf("the SDK read %q, %v; want the pair socks wrote", got.AccessKeyID, err)
	}
}

func TestADamagedKeyFileSaysWhatToDo(t *testing.T) {
	path := filepath.Join(t.TempDir(), config.ManagementKeysFile)
	if err := os.WriteFile(path, []byte("[other]\naws_access_key_id = x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureManagementKeys(path); err == nil {
		t.Fatal("a file without the profile was accepted")
	}
}
