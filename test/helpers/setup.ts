// Loaded before every test file (jest setupFiles).
// tsyringe, under @peculiar/x509, needs the Reflect metadata API first.
import 'reflect-metadata';
import '../../rig/polyfills';
